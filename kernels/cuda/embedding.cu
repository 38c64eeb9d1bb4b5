#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/qlayout.cuh"

namespace moe::cuda {
namespace {

template <Elem E>
__global__ void embed_dense(const int32_t* __restrict__ ids, const void* __restrict__ table, int64_t D,
                            float* __restrict__ out) {
  const int64_t row = ids[blockIdx.x];
  float* o = out + blockIdx.x * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    if constexpr (E == Elem::kF32) o[d] = static_cast<const float*>(table)[row * D + d];
    if constexpr (E == Elem::kF16) o[d] = __half2float(static_cast<const __half*>(table)[row * D + d]);
    if constexpr (E == Elem::kBF16) o[d] = __bfloat162float(static_cast<const __nv_bfloat16*>(table)[row * D + d]);
  }
}

template <QFormat Q, int G>
__global__ void embed_quant(const int32_t* __restrict__ ids, const uint8_t* __restrict__ table, int64_t D,
                            float* __restrict__ out) {
  const int64_t nb = D / G;
  const uint8_t* row = table + ids[blockIdx.x] * nb * QLayout<Q, G>::kBlockBytes;
  float* o = out + blockIdx.x * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float2 sz = qmeta<Q, G>(row, nb, d / G);
    o[d] = (static_cast<float>(qcode<Q, G>(row, nb, d)) - sz.y) * sz.x;
  }
}

template <QFormat Q>
void launch_quant(const int32_t* ids, int T, const WeightOperand& t, float* out, cudaStream_t s) {
  const bool ok = with_group(t.group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    MOE_CUDA_LAUNCH((embed_quant<Q, G>), T, 256, 0, s, ids, static_cast<const uint8_t*>(t.data), t.k, out);
  });
  if (!ok) throw std::invalid_argument("embedding: unsupported group size " + std::to_string(t.group));
}

}  // namespace

void embedding(const int32_t* ids, int T, const WeightOperand& t, float* out, cudaStream_t s) {
  if (T <= 0) return;
  switch (t.q) {
    case QFormat::kQ8: launch_quant<QFormat::kQ8>(ids, T, t, out, s); return;
    case QFormat::kQ4: launch_quant<QFormat::kQ4>(ids, T, t, out, s); return;
    case QFormat::kQ3: launch_quant<QFormat::kQ3>(ids, T, t, out, s); return;
    case QFormat::kQ2: launch_quant<QFormat::kQ2>(ids, T, t, out, s); return;
    case QFormat::kNone: break;
  }
  switch (t.elem) {
    case Elem::kF32: MOE_CUDA_LAUNCH(embed_dense<Elem::kF32>, T, 256, 0, s, ids, t.data, t.k, out); return;
    case Elem::kF16: MOE_CUDA_LAUNCH(embed_dense<Elem::kF16>, T, 256, 0, s, ids, t.data, t.k, out); return;
    case Elem::kBF16: MOE_CUDA_LAUNCH(embed_dense<Elem::kBF16>, T, 256, 0, s, ids, t.data, t.k, out); return;
  }
}

}  // namespace moe::cuda
