// Dense projection y = x w^T + b over F32/F16/BF16 weights; contract in linear.h.
//
// Decode (T = 1) is memory-bound: each weight row is dotted with x straight from its stored
// dtype by a row-dot function compiled twice (GCC function multi-versioning: baseline x86-64
// and x86-64-v3 = AVX2/FMA/F16C) and picked at load time. The loops are written lane-wise over
// kLanes independent partial sums so that GCC vectorises them without -ffast-math.
// Prefill (T > 1) converts each weight row to f32 once, into a per-thread buffer, and dots it
// with all T token rows, so weight bytes are read once per call.
//
// Every row-dot variant adds in the same lane order, so for a given clone y[t] does not depend
// on T, on the thread count, or on whether the row was converted first.
#include "kernels/cpu/linear.h"
#include "kernels/common/thread_pool.h"

#include <bit>
#include <cassert>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moe::cpu {
namespace {

// Run-time dispatch by GCC function multi-versioning: baseline x86-64 and x86-64-v3
// (AVX2/FMA/F16C), chosen once at load time by an ifunc resolver.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MOE_X86_MULTIVERSION 1
#define MOE_ROW_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define MOE_X86_MULTIVERSION 0
#define MOE_ROW_CLONES
#endif

// The helpers below must be inlined into each versioned function to be compiled for its target.
#define MOE_INLINE inline __attribute__((always_inline))

// Independent partial sums per row dot: 4 AVX2 registers, enough to hide the FMA latency.
constexpr int64_t kLanes = 32;
// Below this many multiply-adds (T * N * K) the call stays on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

// IEEE half -> float, exact for every half (same values as f16_to_f32 in dtype.h), written
// without branches and with an unconditional float op so that GCC vectorises it (for the
// baseline clone; the x86-64-v3 versions use the F16C instruction instead).
MOE_INLINE float f16_to_f32_vec(uint16_t h) {
  const uint32_t o = static_cast<uint32_t>(h & 0x7fffu) << 13;  // exponent|mantissa at f32 place
  const uint32_t e = o & 0x0f800000u;
  // Normal: rebias exponent 15 -> 127; inf/NaN: exponent 31 -> 255 (payload kept).
  const uint32_t normal = o + 0x38000000u + (e == 0x0f800000u ? 0x38000000u : 0u);
  // Zero/subnormal: (2^-14 + mant * 2^-24) - 2^-14 is exact.
  const uint32_t sub = std::bit_cast<uint32_t>(std::bit_cast<float>(o + 0x38800000u) - 0x1p-14f);
  const uint32_t is_sub = 0u - static_cast<uint32_t>(e == 0);
  const uint32_t mag = (sub & is_sub) | (normal & ~is_sub);
  return std::bit_cast<float>(mag | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

struct LoadF32 {
  MOE_INLINE static float at(const float* p, int64_t i) { return p[i]; }
};
struct LoadBF16 {
  MOE_INLINE static float at(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }
};
struct LoadF16 {
  MOE_INLINE static float at(const uint16_t* p, int64_t i) { return f16_to_f32_vec(p[i]); }
};

// One block of the lane-wise update: acc[j] += w[j] * x[j].
MOE_INLINE void lanes_fma(float* acc, const float* w, const float* x) {
  for (int64_t j = 0; j < kLanes; ++j) acc[j] += w[j] * x[j];
}

// Adds the last rem < kLanes terms through the same lane-wise update on a zero-padded block
// (so every variant compiles to the same arithmetic; a scalar tail loop gets contracted to FMA
// in some and not in others), then reduces the lanes pairwise in a fixed order.
template <class Load, class Elem>
MOE_INLINE float finish_lanes(float* acc, const Elem* w, const float* x, int64_t rem) {
  if (rem > 0) {
    float wt[kLanes] = {};
    float xt[kLanes] = {};
    for (int64_t j = 0; j < rem; ++j) {
      wt[j] = Load::at(w, j);
      xt[j] = x[j];
    }
    lanes_fma(acc, wt, xt);
  }
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0];
}

// sum_k load(w, k) * x[k] in kLanes lane-wise partial sums.
template <class Load, class Elem>
MOE_INLINE float dot_lanes(const Elem* w, const float* x, int64_t K) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += Load::at(w, k + j) * x[k + j];
  return finish_lanes<Load>(acc, w + k, x + k, K - k);
}

MOE_ROW_CLONES float dot_f32(const float* w, const float* x, int64_t K) {
  return dot_lanes<LoadF32>(w, x, K);
}
MOE_ROW_CLONES float dot_bf16(const uint16_t* w, const float* x, int64_t K) {
  return dot_lanes<LoadBF16>(w, x, K);
}
MOE_ROW_CLONES void convert_bf16(const uint16_t* w, int64_t K, float* out) {
  for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(w[k]);
}

// F16 rows: the baseline versions convert with integer ops; the x86-64-v3 versions with F16C
// (vcvtph2ps, 8 halves per instruction), which GCC 12 does not generate by itself.
#if MOE_X86_MULTIVERSION
__attribute__((target("default")))
#endif
float dot_f16(const uint16_t* w, const float* x, int64_t K) {
  return dot_lanes<LoadF16>(w, x, K);
}
#if MOE_X86_MULTIVERSION
__attribute__((target("default")))
#endif
void convert_f16(const uint16_t* w, int64_t K, float* out) {
  for (int64_t k = 0; k < K; ++k) out[k] = f16_to_f32_vec(w[k]);
}
#if MOE_X86_MULTIVERSION
__attribute__((target("arch=x86-64-v3"))) MOE_INLINE void f16c_block8(const uint16_t* w, float* out) {
  _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))));
}
__attribute__((target("arch=x86-64-v3"))) float dot_f16(const uint16_t* w, const float* x, int64_t K) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    float wt[kLanes];
    for (int64_t j = 0; j < kLanes; j += 8) f16c_block8(w + k + j, wt + j);
    lanes_fma(acc, wt, x + k);
  }
  return finish_lanes<LoadF16>(acc, w + k, x + k, K - k);
}
__attribute__((target("arch=x86-64-v3"))) void convert_f16(const uint16_t* w, int64_t K, float* out) {
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) f16c_block8(w + k, out + k);
  for (; k < K; ++k) out[k] = f16_to_f32_vec(w[k]);
}
#endif

// Row n of w dotted with one token row x (T = 1 path).
float dot_row(WeightRef w, int64_t n, int64_t K, const float* x) {
  switch (compute_type(w.dtype)) {
    case ComputeType::kF32: return dot_f32(static_cast<const float*>(w.data) + n * K, x, K);
    case ComputeType::kF16: return dot_f16(static_cast<const uint16_t*>(w.data) + n * K, x, K);
    case ComputeType::kBF16: return dot_bf16(static_cast<const uint16_t*>(w.data) + n * K, x, K);
  }
  return 0.0f;  // unreachable: the switch covers every ComputeType
}

// Row n of w as f32: the stored row itself for F32, else converted into buf (K floats).
const float* row_as_f32(WeightRef w, int64_t n, int64_t K, float* buf) {
  switch (compute_type(w.dtype)) {
    case ComputeType::kF32: return static_cast<const float*>(w.data) + n * K;
    case ComputeType::kF16: convert_f16(static_cast<const uint16_t*>(w.data) + n * K, K, buf); return buf;
    case ComputeType::kBF16: convert_bf16(static_cast<const uint16_t*>(w.data) + n * K, K, buf); return buf;
  }
  return buf;  // unreachable: the switch covers every ComputeType
}

}  // namespace

void linear(const float* x, int64_t T, int64_t K, WeightRef w, int64_t N, WeightRef bias, float* y) {
  assert(dtype_is_compute(w.dtype));
  assert(bias.data == nullptr || dtype_is_compute(bias.dtype));
  const bool parallel = T * N * K >= kMinParallelWork;
  parallel_for(N, parallel, [&](int64_t begin, int64_t end) {
    // f32 copy of the current weight row (prefill of a non-F32 weight only).
    std::vector<float> row_buf(T > 1 && w.dtype != DType::kF32 ? static_cast<size_t>(K) : 0);
    for (int64_t n = begin; n < end; ++n) {
      const float b = bias.data != nullptr ? load_as_f32(bias.data, bias.dtype, n) : 0.0f;
      if (T == 1) {
        y[n] = dot_row(w, n, K, x) + b;
        continue;
      }
      const float* row = row_as_f32(w, n, K, row_buf.data());
      for (int64_t t = 0; t < T; ++t) y[t * N + n] = dot_f32(row, x + t * K, K) + b;
    }
  });
}

}  // namespace moe::cpu
