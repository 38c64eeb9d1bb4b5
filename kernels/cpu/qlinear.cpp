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
#include "kernels/cpu/qlinear.h"

#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/qlinear_isa.h"
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

#if MOE_QX86
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

const QIsa g_best = detect_best();
std::atomic<QIsa> g_current{g_best};

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

// xs[t * (K / g) + b] = sum of x[t, b*g .. b*g + g - 1], summed left to right in f32.
std::vector<float> group_sums(const float* x, int64_t T, int64_t K, int32_t g) {
  const int64_t nb = K / g;
  std::vector<float> xs(static_cast<size_t>(T * nb));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const float* p = x + t * K + b * g;
      float s = 0.0f;
      for (int32_t j = 0; j < g; ++j) s += p[j];
      xs[static_cast<size_t>(t * nb + b)] = s;
    }
  return xs;
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

void qlinear(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantFormat f, int64_t N, WeightRef bias,
             float* y) {
  assert(bias.data == nullptr || dtype_is_compute(bias.dtype));
  const QOperand op(w, f, K, kernels_for(qisa_current()));
  const std::vector<float> xs = group_sums(x, T, K, op.g);
#pragma omp parallel if (T * N * K >= kMinParallelWork)
  {
    RowBuffer buf;
    if (T > 1) buf.reserve(K, op.nb);
    const int64_t tile = tile_rows(op, T);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < (N + tile - 1) / tile; ++i) {
      const int64_t n0 = i * tile;
      project_rows(op, n0, n0 + tile <= N ? tile : N - n0, x, xs.data(), T, bias, buf, y, N);
    }
  }
}

void qswiglu(const float* x, int64_t T, int64_t H, const uint8_t* gate, QuantFormat gate_f, const uint8_t* up,
             QuantFormat up_f, const uint8_t* down, QuantFormat down_f, int64_t I, float* scratch, float* y) {
  const QKernels& kk = kernels_for(qisa_current());
  const QOperand g_op(gate, gate_f, H, kk);
  const QOperand u_op(up, up_f, H, kk);
  const std::vector<float> xs_g = group_sums(x, T, H, g_op.g);
  const std::vector<float> xs_u = u_op.g == g_op.g ? std::vector<float>{} : group_sums(x, T, H, u_op.g);
  const float* xs_up = u_op.g == g_op.g ? xs_g.data() : xs_u.data();
  float* g = scratch;          // (T, I) gate projections, then silu(gate) * up
  float* u = scratch + T * I;  // (T, I) up projections
#pragma omp parallel if (2 * T * I * H >= kMinParallelWork)
  {
    RowBuffer buf;
    if (T > 1) buf.reserve(H, g_op.nb > u_op.nb ? g_op.nb : u_op.nb);
    const int64_t tile = tile_rows(g_op, T);  // the same for up: same ISA
#pragma omp for schedule(static)
    for (int64_t i = 0; i < (I + tile - 1) / tile; ++i) {
      const int64_t n0 = i * tile, count = n0 + tile <= I ? tile : I - n0;
      project_rows(g_op, n0, count, x, xs_g.data(), T, WeightRef{}, buf, g, I);
      project_rows(u_op, n0, count, x, xs_up, T, WeightRef{}, buf, u, I);
    }
  }
  silu_mul(g, u, T * I, g);
  qlinear(g, T, I, down, down_f, H, WeightRef{}, y);
}

}  // namespace moe::cpu
