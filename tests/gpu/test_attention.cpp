// Attention of the CUDA backend (decode: split over the sequence; prefill: tiled) against the CPU
// backend: GQA groups, odd head dims, long contexts, sliding windows, chunks at an offset.
#include "gpu_test_util.h"

namespace moe {
namespace {

using namespace gpu_test;

struct AttnCase {
  int64_t heads, kv_heads, head_dim, T, pos0, window, capacity;
};

void run_case(Backend& gpu, const AttnCase& c) {
  CpuBackend& cpu = shared_cpu();
  const int64_t filled = c.pos0 + c.T;
  const std::vector<float> kall = randn(filled * c.kv_heads * c.head_dim);
  const std::vector<float> vall = randn(filled * c.kv_heads * c.head_dim);
  const std::vector<float> q = randn(c.T * c.heads * c.head_dim, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> out[2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor kc = poisoned(b, {c.kv_heads, c.capacity, c.head_dim});
    Tensor vc = poisoned(b, {c.kv_heads, c.capacity, c.head_dim});
    b.kv_append(upload(b, kall, {filled, c.kv_heads * c.head_dim}), upload(b, vall, {filled, c.kv_heads * c.head_dim}),
                0, kc, vc);
    Tensor o = poisoned(b, {c.T, c.heads * c.head_dim});
    b.attention(upload(b, q, {c.T, c.heads * c.head_dim}), kc, vc, c.pos0, c.heads, c.window, scale, o);
    out[i] = download(b, o);
  }
  expect_close(out[0], out[1], kExactTol,
               str_cat("attention heads ", c.heads, "/", c.kv_heads, " head_dim ", c.head_dim, " T ", c.T, " pos0 ",
                       c.pos0, " window ", c.window, " capacity ", c.capacity));
}

TEST(CudaAttention, DecodeSplitOverTheSequence) {
  MOE_CUDA_OR_SKIP(gpu);
  for (const AttnCase& c : {AttnCase{4, 2, 16, 1, 0, 0, 8}, AttnCase{4, 2, 16, 1, 11, 0, 16},
                            AttnCase{32, 8, 128, 1, 3000, 0, 4096}, AttnCase{28, 4, 128, 1, 777, 0, 1024},
                            AttnCase{16, 16, 64, 1, 200, 0, 256}, AttnCase{8, 1, 256, 1, 513, 0, 600},
                            AttnCase{6, 2, 80, 3, 95, 0, 100}, AttnCase{32, 8, 128, 4, 2000, 256, 4096},
                            AttnCase{4, 2, 32, 2, 40, 7, 64}, AttnCase{64, 4, 128, 1, 100, 0, 128}})
    run_case(gpu, c);
}

TEST(CudaAttention, PrefillTiledCausal) {
  MOE_CUDA_OR_SKIP(gpu);
  for (const AttnCase& c :
       {AttnCase{4, 2, 16, 5, 0, 0, 16}, AttnCase{4, 2, 16, 12, 0, 0, 20}, AttnCase{32, 8, 128, 130, 0, 0, 256},
        AttnCase{8, 2, 64, 37, 50, 0, 100}, AttnCase{8, 8, 256, 33, 10, 0, 64}, AttnCase{6, 3, 80, 45, 3, 16, 64},
        AttnCase{4, 1, 32, 70, 100, 8, 200}})
    run_case(gpu, c);
}

}  // namespace
}  // namespace moe
