// Embedding rows from a table in a ggml block format (GGUF token_embd, often Q4_K or Q6_K): a
// block per token, each thread dequantizing whole 32-weight units exactly as ggml does
// (ggml_dequant.cuh, bit-exact with the CPU's ggml_dequantize_row).
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/ggml_dequant.cuh"

namespace moe::cuda {
namespace {

template <GgmlType T>
__global__ void embed_ggml(const int32_t* __restrict__ ids, const uint8_t* __restrict__ table, int64_t D,
                           float* __restrict__ out) {
  const int64_t rb = D / ggml::Block<T>::kElems * ggml::Block<T>::kBytes;
  const uint8_t* row = table + static_cast<int64_t>(ids[blockIdx.x]) * rb;
  float* o = out + blockIdx.x * D;
  for (int64_t u = threadIdx.x; u < D / ggml::kUnit; u += blockDim.x) {
    float w[ggml::kUnit];
    ggml::dequant_row_unit<T>(row, u, w);
    MOE_UNROLL
    for (int e = 0; e < ggml::kUnit; ++e) o[u * ggml::kUnit + e] = w[e];
  }
}

}  // namespace

void ggml_embedding(const int32_t* ids, int T, const GgmlWeight& table, float* out, cudaStream_t s) {
  if (T <= 0) return;
  ggml::with_type(table.type, [&](auto tc) {
    constexpr GgmlType G = decltype(tc)::value;
    MOE_CUDA_LAUNCH(embed_ggml<G>, T, 128, 0, s, ids, static_cast<const uint8_t*>(table.data), table.k, out);
  });
}

}  // namespace moe::cuda
