#include <stdexcept>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/qlayout.cuh"
#include "kernels/cuda/quant_repack.cuh"

namespace moe::cuda {
namespace {

// One thread per (row, block): copies the block's scale, zero and codes to their places.
template <QFormat Q, int G>
__global__ void repack_kernel(const uint8_t* __restrict__ src, uint8_t* __restrict__ dst, int64_t rows, int64_t nb) {
  using L = QLayout<Q, G>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * nb) return;
  const int64_t r = idx / nb, b = idx % nb;
  const int64_t row_bytes = nb * L::kBlockBytes;
  const uint8_t* s = src + r * row_bytes + b * L::kBlockBytes;
  uint8_t* d = dst + r * row_bytes;
  uint8_t* meta = d + nb * (L::kBlockBytes - 4) + 4 * b;
  for (int i = 0; i < 4; ++i) meta[i] = s[i];
  const uint8_t* codes = s + 4;
  uint8_t* plane = d + b * L::kPlaneBytes;
  for (int i = 0; i < L::kPlaneBytes; ++i) plane[i] = codes[i];
  if constexpr (Q == QFormat::kQ3) {
    uint8_t* high = d + nb * (G / 4) + b * (G / 8);
    for (int i = 0; i < G / 8; ++i) high[i] = codes[G / 4 + i];
  }
}

template <QFormat Q>
void repack_format(const void* src, void* dst, int64_t rows, int64_t K, int group, cudaStream_t stream) {
  const bool ok = with_group(group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    const int64_t nb = K / G;
    const int64_t n = rows * nb;
    if (n == 0) return;
    const int threads = 256;
    const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
    MOE_CUDA_LAUNCH((repack_kernel<Q, G>), blocks, threads, 0, stream, static_cast<const uint8_t*>(src),
                    static_cast<uint8_t*>(dst), rows, nb);
  });
  if (!ok) throw std::invalid_argument("repack_quantized: unsupported group size " + std::to_string(group));
}

}  // namespace

void repack_quantized(const void* src, void* dst, int64_t rows, int64_t K, QFormat q, int group, cudaStream_t stream) {
  if (group <= 0 || K % group != 0)
    throw std::invalid_argument("repack_quantized: row length " + std::to_string(K) + " is not a multiple of group " +
                                std::to_string(group));
  switch (q) {
    case QFormat::kQ8: repack_format<QFormat::kQ8>(src, dst, rows, K, group, stream); return;
    case QFormat::kQ4: repack_format<QFormat::kQ4>(src, dst, rows, K, group, stream); return;
    case QFormat::kQ3: repack_format<QFormat::kQ3>(src, dst, rows, K, group, stream); return;
    case QFormat::kQ2: repack_format<QFormat::kQ2>(src, dst, rows, K, group, stream); return;
    case QFormat::kNone: break;
  }
  throw std::invalid_argument("repack_quantized: not a quantized format");
}

}  // namespace moe::cuda
