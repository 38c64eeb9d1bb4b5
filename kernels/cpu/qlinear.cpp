// Projections over group-quantized weights; contracts in qlinear.h, block layout in
// quant_format.h.
//
// Per block the product uses s * (sum_j code_j x_j - z * sum_j x_j): the group sums of x are
// computed once per token row and call and shared by all N rows, and the inner loop only turns
// codes into floats and multiply-adds them with x (f32 accumulation; no int8 path).
// Decode (T = 1) is memory-bound: each packed row is read once, its codes unpacked in registers.
// Prefill (T > 1) unpacks each row once into a per-thread f32 buffer (codes, scales, zeros) and
// dots it with all T token rows, so weight bytes are read once per call; the dot over the buffer
// performs exactly the decode path's float operations (kernels/cpu/qdot.h), so a token row's
// result does not depend on T. Rows are split statically over OpenMP threads and each row is
// computed by one thread in a fixed order, so it does not depend on the thread count either.
//
// Run-time dispatch: the row kernels (qdot.h) are compiled three times, for AVX-512
// (x86-64-v4), AVX2/FMA/F16C (x86-64-v3) and the baseline target, and the best one the CPU
// supports is picked by __builtin_cpu_supports (qlinear_isa.h; tests may lower it).
//
// Integer path (q8 and q4 on AVX2 / AVX-512; qdot_int.h): each token row of x is quantized per
// group of the weight format to int8, xq = round(x / sx) with sx = max|x_group| / 127, and per
// block y += s * sx * (sum_j code_j xq_j) - s * z * sx * sum_j xq_j, the code dot in exact
// integer arithmetic (AVX-512 VNNI dpbusd where the CPU has it, else AVX2 maddubs/madd). It
// serves every T through the same row kernel (the packed rows of a tile stay in cache across
// the T token rows), so a token row's result still depends neither on T nor on the thread
// count. MOE_QLINEAR_FLOAT=1 forces the f32 path (qlinear_isa.h).
#include "kernels/cpu/qlinear.h"

#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/common/thread_pool.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/ggml_qlinear.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/cpu/qtile.h"
#include "kernels/quant/quant_format.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MOE_QX86 1
// GCC 12's AVX-512 intrinsics trip false -W(maybe-)uninitialized warnings on their
// _mm512_undefined_* operands once inlined (GCC PR 105593, fixed in 12.3 by these same pragmas
// inside the header): silenced for the header's own lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#define MOE_QX86 0
#endif

namespace moe::cpu {
namespace {

using DotPackedFn = void (*)(const uint8_t* row0, size_t stride, int64_t nb, const float* x, const float* xs,
                             float* out);
using UnpackRowFn = void (*)(const uint8_t* row, int64_t nb, float* codes, float* scale, float* zero);
using DotUnpackedFn = float (*)(const float* codes, const float* scale, const float* zero, int64_t nb, const float* x,
                                const float* xs);

// One ISA's row kernels, indexed [QuantType][log2(group_size / 16)] (qdot.h).
struct QKernels {
  int rows;                        // rows per dot_packed_n call
  DotPackedFn dot_packed1[4][5];   // one row
  DotPackedFn dot_packed_n[4][5];  // `rows` rows at once, x loaded once for all of them
  UnpackRowFn unpack_row[4][5];
  DotUnpackedFn dot_unpacked[5];
};

using DotIntFn = void (*)(const uint8_t* row0, size_t stride, int64_t nb, const int8_t* xq, const float* sx,
                          const float* xs, float* out);

// One run of 16 kTile16 rows with T token rows (qtile_isa.h, qtile.h).
using TileFn = void (*)(const uint8_t* tile, int64_t nb, const int8_t* xq, const float* sx, const float* xs, int64_t T,
                        int64_t K, float* y, int64_t ldy);

// One ISA's integer row kernels, indexed [0: q8, 1: q4][log2(group_size / 16)] (qdot_int.h).
struct QIntKernels {
  int rows;              // rows per dot_n call
  DotIntFn dot1[2][5];   // one row
  DotIntFn dot_n[2][5];  // `rows` rows at once
};

#if MOE_QX86
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,avx512vnni")
namespace int512 {
#define MOE_QDOT_INT_ISA 512
#include "kernels/cpu/qdot_int.h"
#undef MOE_QDOT_INT_ISA
#define MOE_QTILE_ISA 512
#include "kernels/cpu/qtile_isa.h"
#undef MOE_QTILE_ISA
}  // namespace int512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace int256 {
#define MOE_QDOT_INT_ISA 256
#include "kernels/cpu/qdot_int.h"
#undef MOE_QDOT_INT_ISA
#define MOE_QTILE_ISA 256
#include "kernels/cpu/qtile_isa.h"
#undef MOE_QTILE_ISA
}  // namespace int256
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
namespace isa512 {
#define MOE_QDOT_ISA 512
#include "kernels/cpu/qdot.h"
#undef MOE_QDOT_ISA
}  // namespace isa512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace isa256 {
#define MOE_QDOT_ISA 256
#include "kernels/cpu/qdot.h"
#undef MOE_QDOT_ISA
}  // namespace isa256
#pragma GCC pop_options
#endif

namespace portable {
#define MOE_QDOT_ISA 0
#include "kernels/cpu/qdot.h"
#undef MOE_QDOT_ISA
}  // namespace portable

// Below this many multiply-adds (T * N * K) a projection stays on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

QIsa detect_best() {
#if MOE_QX86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return QIsa::kAvx512;
  if (__builtin_cpu_supports("x86-64-v3")) return QIsa::kAvx2;
#endif
  return QIsa::kPortable;
}

bool detect_vnni() {
#if MOE_QX86
  __builtin_cpu_init();
  return __builtin_cpu_supports("x86-64-v4") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool float_from_env() {
  const char* v = std::getenv("MOE_QLINEAR_FLOAT");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

const QIsa g_best = detect_best();
std::atomic<QIsa> g_current{g_best};
const bool g_vnni = detect_vnni();
std::atomic<bool> g_force_float{float_from_env()};

// The integer kernels for format type t on the current ISA, or null for the f32 path.
const QIntKernels* int_kernels_for(QIsa isa, QuantType t) {
  if (g_force_float.load(std::memory_order_relaxed)) return nullptr;
  if (t != QuantType::kQ8 && t != QuantType::kQ4) return nullptr;
#if MOE_QX86
  if (isa == QIsa::kAvx512 && g_vnni) return &int512::kQIntKernels;
  if (isa == QIsa::kAvx512 || isa == QIsa::kAvx2) return &int256::kQIntKernels;
#else
  (void)isa;
#endif
  return nullptr;
}

const QKernels& kernels_for(QIsa isa) {
  switch (isa) {
#if MOE_QX86
    case QIsa::kAvx512: return isa512::kQKernels;
    case QIsa::kAvx2: return isa256::kQKernels;
#else
    case QIsa::kAvx512:
    case QIsa::kAvx2:
#endif
    case QIsa::kPortable: break;
  }
  return portable::kQKernels;
}

int group_index(int32_t g) {
  switch (g) {
    case 16: return 0;
    case 32: return 1;
    case 64: return 2;
    case 128: return 3;
    case 256: return 4;
    default: break;
  }
  assert(false && "qlinear: group size must be 16, 32, 64, 128 or 256");
  return 0;
}

// The kernels of one weight operand (format and row length K), bound to the current ISA.
struct QOperand {
  const uint8_t* w;
  int64_t K;
  int64_t nb;        // blocks per row
  size_t row_bytes;  // quant_row_bytes(f, K)
  int32_t g;         // group size
  int rows;          // rows per dot_packed_n call
  DotPackedFn dot_packed1;
  DotPackedFn dot_packed_n;
  UnpackRowFn unpack_row;
  DotUnpackedFn dot_unpacked;

  QOperand(const uint8_t* weights, QuantFormat f, int64_t k, const QKernels& kk)
      : w(weights), K(k), nb(k / f.group_size), row_bytes(quant_row_bytes(f, k)), g(f.group_size), rows(kk.rows) {
    assert(f.group_size > 0 && k % f.group_size == 0);
    const int gi = group_index(f.group_size);
    const auto t = static_cast<size_t>(f.type);
    dot_packed1 = kk.dot_packed1[t][gi];
    dot_packed_n = kk.dot_packed_n[t][gi];
    unpack_row = kk.unpack_row[t][gi];
    dot_unpacked = kk.dot_unpacked[gi];
  }
};

// xs[t * (K / g) + b] = sum of x[t, b*g .. b*g + g - 1], summed left to right in f32. Fills xs
// in place (resized; its capacity is reused from call to call).
void group_sums(const float* x, int64_t T, int64_t K, int32_t g, std::vector<float>& xs) {
  const int64_t nb = K / g;
  xs.resize(static_cast<size_t>(T * nb));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const float* p = x + t * K + b * g;
      float s = 0.0f;
      for (int32_t j = 0; j < g; ++j) s += p[j];
      xs[static_cast<size_t>(t * nb + b)] = s;
    }
}

// Per-thread unpacked row for prefill: codes (K floats), scales, zeros (nb floats each).
struct RowBuffer {
  std::vector<float> data;
  void reserve(int64_t K, int64_t nb) { data.resize(static_cast<size_t>(K + 2 * nb)); }
};

// Rows [n0, n0 + count) of op dotted with the T token rows of x (+ bias):
// y[t * ldy + n] for every t; the body of every projection, run by one thread. Decode (T = 1)
// takes op.rows rows per kernel call when count allows (x loaded once for all of them);
// prefill unpacks each row into buf once and reuses it for all T tokens.
inline void project_rows(const QOperand& op, int64_t n0, int64_t count, const float* x, const float* xs, int64_t T,
                         WeightRef bias, RowBuffer& buf, float* y, int64_t ldy) {
  const auto bias_at = [&](int64_t n) { return bias.data != nullptr ? load_as_f32(bias.data, bias.dtype, n) : 0.0f; };
  if (T == 1) {
    float out[8];
    int64_t n = n0;
    for (; op.rows <= 8 && n + op.rows <= n0 + count; n += op.rows) {
      op.dot_packed_n(op.w + static_cast<size_t>(n) * op.row_bytes, op.row_bytes, op.nb, x, xs, out);
      for (int r = 0; r < op.rows; ++r) y[n + r] = out[r] + bias_at(n + r);
    }
    for (; n < n0 + count; ++n) {
      op.dot_packed1(op.w + static_cast<size_t>(n) * op.row_bytes, op.row_bytes, op.nb, x, xs, out);
      y[n] = out[0] + bias_at(n);
    }
    return;
  }
  float* codes = buf.data.data();
  float* scale = codes + op.K;
  float* zero = scale + op.nb;
  for (int64_t n = n0; n < n0 + count; ++n) {
    op.unpack_row(op.w + static_cast<size_t>(n) * op.row_bytes, op.nb, codes, scale, zero);
    const float b = bias_at(n);
    for (int64_t t = 0; t < T; ++t)
      y[t * ldy + n] = op.dot_unpacked(codes, scale, zero, op.nb, x + t * op.K, xs + t * op.nb) + b;
  }
}

// Rows per unit of parallel work: a decode kernel call's worth, or one row in prefill.
int64_t tile_rows(const QOperand& op, int64_t T) {
  return T == 1 ? op.rows : 1;
}

// T token rows of x (K columns) quantized per group of g: xq (T * K int8), sx and xs (T * K / g
// f32 each; xs = sx * sum of the group's xq). Plain scalar code, the same on every ISA.
struct XQuant {
  std::vector<int8_t> xq;
  std::vector<float> sx, xs;
};
// Fills q in place (resized; capacity reused from call to call, so decode does not allocate).
void quantize_x(const float* x, int64_t T, int64_t K, int32_t g, XQuant& q) {
  const int64_t nb = K / g;
  q.xq.resize(static_cast<size_t>(T * K));
  q.sx.resize(static_cast<size_t>(T * nb));
  q.xs.resize(static_cast<size_t>(T * nb));
#if MOE_QX86
  if (g_best != QIsa::kPortable) {
    int256::quantize_groups(x, T * nb, g, q.xq.data(), q.sx.data(), q.xs.data());
    return;
  }
#endif
  // Scalar, for the kTile16 path on CPUs without AVX2: the same operations, the same results.
  for (int64_t i = 0; i < T * nb; ++i) {
    const float* p = x + i * g;
    int8_t* o = q.xq.data() + i * g;
    float amax = 0.0f;
    for (int32_t j = 0; j < g; ++j) amax = std::fmax(amax, std::fabs(p[j]));
    const float sx = amax / 127.0f;
    int32_t sum = 0;
    for (int32_t j = 0; j < g; ++j) {
      float r = sx > 0.0f ? std::nearbyint(p[j] / sx) : 0.0f;
      r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
      o[j] = static_cast<int8_t>(r);
      sum += o[j];
    }
    q.sx[static_cast<size_t>(i)] = sx;
    q.xs[static_cast<size_t>(i)] = sx * static_cast<float>(sum);
  }
}

// One weight operand bound to its path: the integer kernels (q8, q4 where the ISA has them) with
// x quantized for its group size, or the f32 kernels with x's group sums.
struct Projection {
  QOperand op;
  const QIntKernels* ik;
  DotIntFn dot1 = nullptr, dot_n = nullptr;
  const XQuant* xq = nullptr;  // integer path
  const float* xs = nullptr;   // f32 path: group sums
  int64_t tile(int64_t T) const { return ik != nullptr ? ik->rows : tile_rows(op, T); }

  Projection(const uint8_t* w, QuantFormat f, int64_t K, QIsa isa)
      : op(w, f, K, kernels_for(isa)), ik(int_kernels_for(isa, f.type)) {
    if (ik != nullptr) {
      const int ti = f.type == QuantType::kQ8 ? 0 : 1;
      dot1 = ik->dot1[ti][group_index(f.group_size)];
      dot_n = ik->dot_n[ti][group_index(f.group_size)];
    }
  }

  // Rows [n0, n0 + count) for the T token rows into y[t * ldy + n] (+ bias).
  void rows(int64_t n0, int64_t count, const float* x, int64_t T, WeightRef bias, RowBuffer& buf, float* y,
            int64_t ldy) const {
    if (ik == nullptr) {
      project_rows(op, n0, count, x, xs, T, bias, buf, y, ldy);
      return;
    }
    const auto bias_at = [&](int64_t n) { return bias.data != nullptr ? load_as_f32(bias.data, bias.dtype, n) : 0.0f; };
    float out[8];
    const int R = ik->rows;
    for (int64_t n = n0; n < n0 + count;) {
      const int r = R <= 8 && n + R <= n0 + count ? R : 1;
      const uint8_t* row = op.w + static_cast<size_t>(n) * op.row_bytes;
      for (int64_t t = 0; t < T; ++t) {
        const int8_t* q = xq->xq.data() + t * op.K;
        const float* sx = xq->sx.data() + t * op.nb;
        const float* xst = xq->xs.data() + t * op.nb;
        (r == 1 ? dot1 : dot_n)(row, op.row_bytes, op.nb, q, sx, xst, out);
        for (int i = 0; i < r; ++i) y[t * ldy + n + i] = out[i] + bias_at(n + i);
      }
      n += r;
    }
  }
};

// Prepares x for p: quantized (integer path) into q, or group sums (f32 path) into s; `other`
// may share its prepared x when it has the same path and group size.
void prepare_x(Projection& p, const float* x, int64_t T, XQuant& q, std::vector<float>& s,
               const Projection* other = nullptr) {
  if (other != nullptr && (p.ik != nullptr) == (other->ik != nullptr) && p.op.g == other->op.g) {
    p.xq = other->xq;
    p.xs = other->xs;
    return;
  }
  if (p.ik != nullptr) {
    quantize_x(x, T, p.op.K, p.op.g, q);
    p.xq = &q;
  } else {
    group_sums(x, T, p.op.K, p.op.g, s);
    p.xs = s.data();
  }
}

// The vector kTile16 kernel for format f on isa, or null for the scalar one.
TileFn tile_kernel_for(QIsa isa, QuantFormat f) {
#if MOE_QX86
  const auto t = static_cast<size_t>(f.type);
  const auto gi = static_cast<size_t>(group_index(f.group_size));
  if (isa == QIsa::kAvx512 && g_vnni) return int512::kTileKernels[t][gi];
  if (isa == QIsa::kAvx512 || isa == QIsa::kAvx2) return int256::kTileKernels[t][gi];
#else
  (void)isa;
  (void)f;
#endif
  return nullptr;
}

// A kTile16 weight (N rows of K) bound to its kernel. Units of work: the runs of 16 rows, then
// the leftover rows one by one (block layout, qrow_dot_exact).
struct TiledProjection {
  QWeight w;
  int64_t K, N, nb, runs;
  size_t row_bytes;
  TileFn fn;
  const XQuant* xq = nullptr;

  TiledProjection(QWeight weight, int64_t k, int64_t n, QIsa isa)
      : w(weight),
        K(k),
        N(n),
        nb(k / weight.format.group_size),
        runs(n / kQTileRows),
        row_bytes(quant_row_bytes(weight.format, k)),
        fn(tile_kernel_for(isa, weight.format)) {
    assert(qtile_has_layout(weight.format) && k % weight.format.group_size == 0);
  }
  int64_t units() const { return runs + (N - runs * kQTileRows); }

  // Unit i for the T token rows into y[t * ldy + n] (+ bias).
  void unit(int64_t i, int64_t T, WeightRef bias, float* y, int64_t ldy) const {
    const int8_t* q = xq->xq.data();
    const float* sx = xq->sx.data();
    const float* xs = xq->xs.data();
    int64_t n0 = 0, count = 1;
    if (i < runs) {
      n0 = i * kQTileRows;
      count = kQTileRows;
      const uint8_t* tile = w.data + static_cast<size_t>(n0) * row_bytes;
      if (fn != nullptr) {
        fn(tile, nb, q, sx, xs, T, K, y + n0, ldy);
      } else {
        qtile_dot_scalar(tile, w.format, nb, q, sx, xs, T, K, y + n0, ldy);
      }
    } else {
      n0 = runs * kQTileRows + (i - runs);
      qrow_dot_exact(w.data + static_cast<size_t>(n0) * row_bytes, w.format, nb, q, sx, xs, T, K, y + n0, ldy);
    }
    if (bias.data != nullptr)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = n0; n < n0 + count; ++n) y[t * ldy + n] += load_as_f32(bias.data, bias.dtype, n);
  }
};

// gate and up in the block layout: one parallel pass over their rows (gate_up of qswiglu).
void qswiglu_rows(const float* x, int64_t T, int64_t H, QWeight gate, QWeight up, int64_t I, QIsa isa, XQuant& qg,
                  XQuant& qu, float* g, float* u) {
  Projection g_p(gate.data, gate.format, H, isa);
  Projection u_p(up.data, up.format, H, isa);
  thread_local std::vector<float> sg, su;
  prepare_x(g_p, x, T, qg, sg);
  prepare_x(u_p, x, T, qu, su, &g_p);
  const int64_t tg = g_p.tile(T), tu = u_p.tile(T);
  const int64_t tile = tg > tu ? tg : tu;  // any grouping of rows gives the same results
  parallel_for((I + tile - 1) / tile, 2 * T * I * H >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    RowBuffer buf;
    if (T > 1) buf.reserve(H, g_p.op.nb > u_p.op.nb ? g_p.op.nb : u_p.op.nb);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n0 = i * tile, count = n0 + tile <= I ? tile : I - n0;
      g_p.rows(n0, count, x, T, WeightRef{}, buf, g, I);
      u_p.rows(n0, count, x, T, WeightRef{}, buf, u, I);
    }
  });
}

}  // namespace

const char* qisa_name(QIsa isa) {
  switch (isa) {
    case QIsa::kPortable: return "portable";
    case QIsa::kAvx2: return "avx2";
    case QIsa::kAvx512: return "avx512";
  }
  return "?";
}

QIsa qisa_best() {
  return g_best;
}
QIsa qisa_current() {
  return g_current.load(std::memory_order_relaxed);
}
QIsa qisa_set(QIsa isa) {
  const QIsa use = static_cast<uint8_t>(isa) < static_cast<uint8_t>(g_best) ? isa : g_best;
  g_current.store(use, std::memory_order_relaxed);
  return use;
}

bool qlinear_float_from_env() {
  return float_from_env();
}
bool qlinear_float_forced() {
  return g_force_float.load(std::memory_order_relaxed);
}
bool qlinear_set_float(bool force) {
  return g_force_float.exchange(force, std::memory_order_relaxed);
}
bool qisa_has_vnni() {
  return g_vnni;
}

void qlinear(const float* x, int64_t T, int64_t K, QWeight w, int64_t N, WeightRef bias, float* y) {
  assert(bias.data == nullptr || dtype_is_compute(bias.dtype));
  if (is_ggml(w.format.type)) {  // ggml's blocks, as a GGUF file holds them
    ggml_qlinear(x, T, K, w.data, w.format.type, N, bias, y);
    return;
  }
  // Prepared x, reused across calls by the calling thread: no allocation per decode step.
  thread_local XQuant q;
  thread_local std::vector<float> xs;
  if (w.layout == QuantLayout::kTile16) {
    TiledProjection p(w, K, N, qisa_current());
    quantize_x(x, T, K, w.format.group_size, q);
    p.xq = &q;
    parallel_for(p.units(), T * N * K >= kMinParallelWork, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) p.unit(i, T, bias, y, N);
    });
    return;
  }
  const QuantFormat f = w.format;
  Projection p(w.data, f, K, qisa_current());
  prepare_x(p, x, T, q, xs);
  const int64_t tile = p.tile(T);
  parallel_for((N + tile - 1) / tile, T * N * K >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    RowBuffer buf;
    if (T > 1 && p.ik == nullptr) buf.reserve(K, p.op.nb);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n0 = i * tile;
      p.rows(n0, n0 + tile <= N ? tile : N - n0, x, T, bias, buf, y, N);
    }
  });
}

void qswiglu(const float* x, int64_t T, int64_t H, QWeight gate, QWeight up, QWeight down, int64_t I, float* scratch,
             float* y) {
  const QIsa isa = qisa_current();
  float* g = scratch;          // (T, I) gate projections, then silu(gate) * up
  float* u = scratch + T * I;  // (T, I) up projections
  // Prepared x, reused across calls by the calling thread (qlinear below has its own).
  thread_local XQuant qg, qu;
  if (gate.layout != up.layout || is_ggml(gate.format.type) ||
      is_ggml(up.format.type)) {  // not made by CpuBackend (it lays out an MLP's weights alike)
    qlinear(x, T, H, gate, I, WeightRef{}, g);
    qlinear(x, T, H, up, I, WeightRef{}, u);
  } else if (gate.layout == QuantLayout::kTile16) {
    TiledProjection g_p(gate, H, I, isa), u_p(up, H, I, isa);
    quantize_x(x, T, H, gate.format.group_size, qg);
    g_p.xq = &qg;
    if (up.format.group_size == gate.format.group_size) {
      u_p.xq = &qg;
    } else {
      quantize_x(x, T, H, up.format.group_size, qu);
      u_p.xq = &qu;
    }
    parallel_for(g_p.units(), 2 * T * I * H >= kMinParallelWork, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        g_p.unit(i, T, WeightRef{}, g, I);
        u_p.unit(i, T, WeightRef{}, u, I);
      }
    });
  } else {
    qswiglu_rows(x, T, H, gate, up, I, isa, qg, qu, g, u);
  }
  silu_mul(g, u, T * I, g);
  qlinear(g, T, I, down, H, WeightRef{}, y);
}

}  // namespace moe::cpu
