// ggml block formats on the CPU. Two paths:
//  - integer (AVX2 and AVX-512 ISAs; every ggml type: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
//    Q4_K, Q5_K, Q6_K, IQ4_XS): each token row of x is quantized once per call to int8 blocks of
//    32 (Q8_0-style: d = amax / 127, round to nearest) with the sums of its codes per 16, and every
//    weight block is multiplied with it in exact integer arithmetic, as ggml's
//    ggml_vec_dot_*_q8_* do (kernels in ggml_qlinear_x86.inc: AVX2 maddubs/madd, or AVX-512 VNNI
//    _mm256_dpbusd_epi32 where the CPU has it). It differs from the f32 path by the rounding of x
//    to int8 (|x - xq| <= d / 2 per element). Each weight row is unpacked once per group of 256
//    weights and dotted with up to 8 token rows (ggml_x86::kTileTokens) per pass, two weight rows
//    at a time on VNNI for T >= 4.
//  - f32 (every type; the only path on the portable ISA and with MOE_QLINEAR_FLOAT=1): each
//    weight row dequantized once per call with the scalar reference (ggml_quants.h), then one f32
//    dot product per token row.
// Both are multithreaded over weight rows; every token row has its own accumulators and the same
// float operations whatever T, the tile it falls in, or the thread count, so its result depends on
// none of them.
#include "kernels/cpu/ggml_qlinear.h"

#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/common/thread_pool.h"
#include "kernels/cpu/ggml_qlinear_x86.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/ggml_quants.h"

namespace moe::cpu {

namespace {

constexpr int64_t kMinParallelWork = int64_t{1} << 16;

float bias_at(WeightRef b, int64_t n) {
  if (b.data == nullptr) return 0.0f;
  switch (compute_type(b.dtype)) {
    case ComputeType::kF32: return static_cast<const float*>(b.data)[n];
    case ComputeType::kF16: return f16_to_f32(static_cast<const uint16_t*>(b.data)[n]);
    case ComputeType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(b.data)[n]);
  }
  return 0.0f;
}

// The buffers of ggml_x86::XView (one token row after the other, each padded to kp).
struct XQ8 {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int16_t> s16;
};

void f32_path(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantType type, int64_t N, WeightRef bias,
              float* y) {
  const size_t row_bytes = quant_row_bytes(QuantFormat{type, ggml_block(type).elems}, K);
  parallel_for(N, T * N * K >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    // Each thread's row buffer, kept between calls: no allocation per decode step.
    thread_local std::vector<float> row;
    if (row.size() < static_cast<size_t>(K)) row.resize(static_cast<size_t>(K));
    for (int64_t n = begin; n < end; ++n) {
      ggml_dequantize_row(type, w + static_cast<size_t>(n) * row_bytes, K, row.data());
      const float b = bias_at(bias, n);
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * K;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t k = 0;
        for (; k + 8 <= K; k += 8)
          for (int j = 0; j < 8; ++j) acc[j] += xt[k + j] * row[static_cast<size_t>(k + j)];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; k < K; ++k) s += xt[k] * row[static_cast<size_t>(k)];
        y[t * N + n] = s + b;
      }
    }
  });
}

[[maybe_unused]] const ggml_x86::TileKernels* int_kernels(QuantType t) {
  if (!is_ggml(t) || qlinear_float_forced()) return nullptr;
  switch (qisa_current()) {
    case QIsa::kAvx512: return ggml_x86::ggml_qlinear_x86_kernels(t, qisa_has_vnni());
    case QIsa::kAvx2: return ggml_x86::ggml_qlinear_x86_kernels(t, false);
    case QIsa::kPortable: break;
  }
  return nullptr;
}

}  // namespace

bool ggml_qlinear_int_path(QuantType type) {
  return int_kernels(type) != nullptr;
}

void ggml_qlinear(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantType type, int64_t N, WeightRef bias,
                  float* y) {
  assert(is_ggml(type) && K % ggml_block(type).elems == 0);
  const ggml_x86::TileKernels* kern = int_kernels(type);
  if (kern == nullptr) {
    f32_path(x, T, K, w, type, N, bias, y);
    return;
  }
  thread_local XQ8 xq8;  // reused by the calling thread: no allocation per decode step
  const int64_t kp = (K + 255) / 256 * 256;
  xq8.qs.assign(static_cast<size_t>(T * kp), 0);
  xq8.d.assign(static_cast<size_t>(T * kp / 32), 0.0f);
  xq8.s16.assign(static_cast<size_t>(T * kp / 16), 0);
  // The pool's workers read the caller's copy, not their own thread_local.
  const ggml_x86::XView xv{xq8.qs.data(), xq8.d.data(), xq8.s16.data(), kp};
  kern->quantize(x, T, K, xv);
  const size_t row_bytes = quant_row_bytes(QuantFormat{type, ggml_block(type).elems}, K);
  // Rows in pairs (x loaded once for both) where it pays: T >= 4 on VNNI.
  const int rows = T >= ggml_x86::kBatchTokens ? kern->batch_rows : 1;
  constexpr int kNT = ggml_x86::kTileTokens;
  const int64_t npairs = (N + rows - 1) / rows;
  parallel_for(npairs, T * N * K >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n0 = p * rows;
      const int nr = static_cast<int>(N - n0 < rows ? N - n0 : rows);
      const uint8_t* wr = w + static_cast<size_t>(n0) * row_bytes;
      float out[ggml_x86::kTileRows * kNT];
      for (int64_t t0 = 0; t0 < T; t0 += kNT) {
        const int nt = static_cast<int>(T - t0 < kNT ? T - t0 : kNT);
        kern->fn[nr - 1][nt - 1](wr, row_bytes, K, xv, t0, out);
        for (int r = 0; r < nr; ++r) {
          const float b = bias_at(bias, n0 + r);
          for (int i = 0; i < nt; ++i) y[(t0 + i) * N + n0 + r] = out[r * nt + i] + b;
        }
      }
    }
  });
}

}  // namespace moe::cpu
