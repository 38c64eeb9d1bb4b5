// Scalar dequantization of ggml's block formats: ggml-quants.c's dequantize_row_* re-written, with
// the same float operations in the same order (one rounding per product, no fused multiply-add:
// this unit is compiled for the baseline target), so the results are bit-exact with ggml and with
// gguf-py's numpy float32 code.
#include "kernels/quant/ggml_quants.h"

#include <cstring>

#include "kernels/common/dtype.h"

namespace moe {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void deq_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}
void deq_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    const float p0 = static_cast<float>(qs[j] & 0xF) * d;
    const float p1 = static_cast<float>(qs[j] >> 4) * d;
    y[j] = p0 + m;
    y[j + 16] = p1 + m;
  }
}
void deq_q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint32_t qh = u32_at(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(((qs[j] & 0xF) | h0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}
void deq_q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint32_t qh = u32_at(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    const float p0 = static_cast<float>((qs[j] & 0xF) | h0) * d;
    const float p1 = static_cast<float>((qs[j] >> 4) | h1) * d;
    y[j] = p0 + m;
    y[j + 16] = p1 + m;
  }
}
void deq_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}
void deq_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          const float p = dl * static_cast<float>((q[16 * half + l] >> shift) & 3);
          *y++ = p - ml;
        }
      }
    }
    q += 32;
  }
}
void deq_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  int8_t scales[16];
  ggml_q3k_scales(b + 96, scales);
  const float d_all = f16_at(b + 108);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++]);
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
      m = static_cast<uint8_t>(m << 1);
    }
    q += 32;
  }
}
void deq_q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
    uint8_t sc, mn;
    ggml_scale_min_k4(is, scales, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    ggml_scale_min_k4(is + 1, scales, &sc, &mn);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) {
      const float p = d1 * static_cast<float>(q[l] & 0xF);
      *y++ = p - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const float p = d2 * static_cast<float>(q[l] >> 4);
      *y++ = p - m2;
    }
    q += 32;
  }
}
void deq_q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
    uint8_t sc, mn;
    ggml_scale_min_k4(is, scales, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    ggml_scale_min_k4(is + 1, scales, &sc, &mn);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) {
      const float p = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0));
      *y++ = p - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const float p = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0));
      *y++ = p - m2;
    }
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}
void deq_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}
void deq_iq4_xs(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint16_t scales_h;
  std::memcpy(&scales_h, b + 2, 2);
  const uint8_t* scales_l = b + 4;
  const uint8_t* qs = b + 8;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
      y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
    }
    y += 32;
    qs += 16;
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(QuantType t) {
  switch (t) {
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2: return nullptr;
    case QuantType::kGgmlQ4_0: return deq_q4_0;
    case QuantType::kGgmlQ4_1: return deq_q4_1;
    case QuantType::kGgmlQ5_0: return deq_q5_0;
    case QuantType::kGgmlQ5_1: return deq_q5_1;
    case QuantType::kGgmlQ8_0: return deq_q8_0;
    case QuantType::kGgmlQ2_K: return deq_q2_k;
    case QuantType::kGgmlQ3_K: return deq_q3_k;
    case QuantType::kGgmlQ4_K: return deq_q4_k;
    case QuantType::kGgmlQ5_K: return deq_q5_k;
    case QuantType::kGgmlQ6_K: return deq_q6_k;
    case QuantType::kGgmlIQ4_XS: return deq_iq4_xs;
  }
  return nullptr;
}

}  // namespace

void ggml_dequantize_row(QuantType t, const uint8_t* src, int64_t n, float* dst) {
  const GgmlBlock blk = ggml_block(t);
  const BlockFn fn = block_fn(t);
  if (fn == nullptr || blk.elems == 0) return;
  for (int64_t i = 0; i < n / blk.elems; ++i) fn(src + i * blk.bytes, dst + i * blk.elems);
}

}  // namespace moe
