// Quantizers (RTN, HQQ) and dequantization for the block formats of quant_format.h.
//
// Every block is quantized on its own from its group of weights: per block the scale s and zero
// z are chosen, rounded to fp16, and the codes are then chosen against the ROUNDED values,
//   code = clamp(round(w / s16 + z16), 0, 2^bits - 1),
// so dequantization, (code - z16) * s16, is exactly the grid the codes were chosen on. Rows are
// independent and processed in a fixed order within a row, so the bytes do not depend on the
// thread count.
#include "kernels/quant/quantize.h"

#include "kernels/quant/ggml_quants.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "kernels/common/dtype.h"
#include "kernels/common/thread_pool.h"
#include "kernels/quant/hqq.h"
#include "kernels/quant/pack.h"

namespace moe {

namespace {

constexpr float kF16Max = 65504.0f;
constexpr uint16_t kF16MaxBits = 0x7bffu;
constexpr int kMaxGroup = 256;
// Below this many weights a dequantization stays on the calling thread.
constexpr int64_t kMinParallelDequant = int64_t{1} << 16;

// The smallest fp16 >= x, for 0 < x <= kF16Max (so never 0 and never infinite).
uint16_t f16_round_up(float x) {
  uint16_t h = f32_to_f16(x);
  if (f16_to_f32(h) < x) ++h;  // positive halves are ordered like their bit patterns
  return std::min(h, kF16MaxBits);
}

// fp16 scale and zero of one block, as bits and as the floats they stand for.
struct BlockParams {
  uint16_t s_bits = 0;
  uint16_t z_bits = 0;
  float s = 0.0f;
  float z = 0.0f;
};

BlockParams make_params(uint16_t s_bits, float z) {
  BlockParams p;
  p.s_bits = s_bits;
  p.s = f16_to_f32(s_bits);
  // +0 for a zero of 0 (never -0), so that equal grids store equal bytes.
  p.z_bits = z == 0.0f ? uint16_t{0} : f32_to_f16(std::clamp(z, -kF16Max, kF16Max));
  p.z = f16_to_f32(p.z_bits);
  return p;
}

// RTN parameters of w[0, g): scale = (max - min) / (2^bits - 1) rounded UP to fp16 (so that
// maxcode * s16 >= max - min and the grid spans the group up to the rounding of the zero), and
// zero = -min / s16 in units of the stored scale, rounded to nearest fp16. When that zero would
// not fit fp16 (a group far from 0 relative to its spread) the scale is enlarged until it does.
// A constant group v != 0 gets s16 = fp16(|v|), z16 = -+1, code 0 (decodes to fp16(v)); a
// constant 0 (or a |v| below the fp16 range) gets s16 = 1, z16 = 0, code 0. Weights beyond the
// fp16 range (|w| > 65504) get clamped, finite but coarse parameters.
BlockParams rtn_params(const float* w, int g, int maxcode) {
  float lo = w[0], hi = w[0];
  for (int j = 1; j < g; ++j) {
    lo = std::min(lo, w[j]);
    hi = std::max(hi, w[j]);
  }
  if (lo == hi) {
    const uint16_t s_bits = f32_to_f16(std::min(std::fabs(lo), kF16Max));
    if (s_bits == 0) return make_params(f32_to_f16(1.0f), 0.0f);
    return make_params(s_bits, lo > 0.0f ? -1.0f : 1.0f);
  }
  const float scale = std::min((hi - lo) / static_cast<float>(maxcode), kF16Max);
  uint16_t s_bits = f16_round_up(scale);
  if (std::fabs(lo) / f16_to_f32(s_bits) > kF16Max) s_bits = f16_round_up(std::min(std::fabs(lo) / kF16Max, kF16Max));
  return make_params(s_bits, -lo / f16_to_f32(s_bits));
}

// codes[j] = clamp(round(w[j] / s + z), 0, maxcode) (round half to even).
void choose_codes(const float* w, int g, float s, float z, int maxcode, uint8_t* codes) {
  const float top = static_cast<float>(maxcode);
  for (int j = 0; j < g; ++j) {
    const float c = std::clamp(std::nearbyint(w[j] / s + z), 0.0f, top);
    codes[j] = static_cast<uint8_t>(c);
  }
}

// sum_j (w[j] - (codes[j] - z) * s)^2, the dequantized value computed as dequantize_rows does.
double squared_error(const float* w, const uint8_t* codes, int g, float s, float z) {
  double e = 0.0;
  for (int j = 0; j < g; ++j) {
    const double d = static_cast<double>(w[j]) - static_cast<double>((static_cast<float>(codes[j]) - z) * s);
    e += d * d;
  }
  return e;
}

void store_half(uint8_t* p, uint16_t h) {
  p[0] = static_cast<uint8_t>(h & 0xffu);
  p[1] = static_cast<uint8_t>(h >> 8);
}

uint16_t load_half(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

// Quantizes one group w[0, g) into one block at out.
void quantize_block(const float* w, QuantFormat f, const QuantizeOptions& opt, uint8_t* out) {
  const int g = f.group_size;
  const int maxcode = (1 << quant_bits(f.type)) - 1;
  uint8_t codes[kMaxGroup];
  BlockParams p = rtn_params(w, g, maxcode);
  choose_codes(w, g, p.s, p.z, maxcode, codes);
  switch (opt.quantizer) {
    case Quantizer::kRtn: break;
    case Quantizer::kHqq: {
      // Keep the HQQ zero only when, after fp16 rounding, it lowers the squared error.
      const HqqParams hp{opt.hqq_iterations, opt.hqq_lp_norm, opt.hqq_beta, opt.hqq_kappa};
      const float z = hqq_refit_zero(w, g, p.s, p.z, maxcode, hp);
      const BlockParams ph = make_params(p.s_bits, z);
      uint8_t codes_h[kMaxGroup];
      choose_codes(w, g, ph.s, ph.z, maxcode, codes_h);
      if (squared_error(w, codes_h, g, ph.s, ph.z) < squared_error(w, codes, g, p.s, p.z)) {
        p = ph;
        std::memcpy(codes, codes_h, static_cast<size_t>(g));
      }
      break;
    }
  }
  store_half(out, p.s_bits);
  store_half(out + 2, p.z_bits);
  pack_codes(codes, f, out + 4);
}

}  // namespace

void quantize_rows(const float* w, int64_t N, int64_t K, QuantFormat f, const QuantizeOptions& opt, uint8_t* out) {
  assert(f.group_size > 0 && f.group_size <= kMaxGroup && f.group_size % 8 == 0);
  assert(K % f.group_size == 0);
  const int64_t blocks = K / f.group_size;
  const size_t block_bytes = quant_block_bytes(f);
  const size_t row_bytes = quant_row_bytes(f, K);
  cpu::parallel_for(N, N > 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* wr = w + n * K;
      uint8_t* qr = out + static_cast<size_t>(n) * row_bytes;
      for (int64_t b = 0; b < blocks; ++b)
        quantize_block(wr + b * f.group_size, f, opt, qr + static_cast<size_t>(b) * block_bytes);
    }
  });
}

void dequantize_rows(const uint8_t* q, int64_t N, int64_t K, QuantFormat f, float* out) {
  if (is_ggml(f.type)) {  // ggml's block formats, as GGUF files hold them
    assert(K % f.group_size == 0);
    const size_t row_bytes = quant_row_bytes(f, K);
    cpu::parallel_for(N, N > 1 && N * K >= kMinParallelDequant, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n)
        ggml_dequantize_row(f.type, q + static_cast<size_t>(n) * row_bytes, K, out + n * K);
    });
    return;
  }
  assert(f.group_size > 0 && f.group_size % 8 == 0);
  assert(K % f.group_size == 0);
  const int64_t blocks = K / f.group_size;
  const size_t block_bytes = quant_block_bytes(f);
  const size_t row_bytes = quant_row_bytes(f, K);
  const int g = f.group_size;
  // One row (an embedding lookup per decoded token) stays on the caller: no parallel region.
  cpu::parallel_for(N, N > 1 && N * K >= kMinParallelDequant, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* blk = q + static_cast<size_t>(n) * row_bytes + static_cast<size_t>(b) * block_bytes;
        const float s = f16_to_f32(load_half(blk));
        const float z = f16_to_f32(load_half(blk + 2));
        dequantize_block_codes(blk + 4, f.type, g, s, z, out + n * K + b * g);
      }
    }
  });
}

uint32_t quant_code(const uint8_t* block, QuantFormat f, int32_t j) {
  assert(j >= 0 && j < f.group_size);
  return unpack_code(block + 4, f.type, f.group_size, j);
}

}  // namespace moe
