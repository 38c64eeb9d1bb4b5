// Attention of the CUDA backend (decode: split over the sequence; prefill: tiled) against the CPU
// backend: GQA groups, odd head dims, long contexts, sliding windows, chunks at an offset.
#include <numeric>

#include "gpu_test_util.h"
#include "runtime/backend/kv_batch.h"

namespace moe {
namespace {

using namespace gpu_test;

struct AttnCase {
  int64_t heads, kv_heads, head_dim, T, pos0, window, capacity;
};

// The cache as `blocks` blocks of block_size rows in a shuffled order (block_size 0: one block of
// `capacity` rows, the single-sequence layout).
void run_case(Backend& gpu, const AttnCase& c, int64_t block_size = 0) {
  CpuBackend& cpu = shared_cpu();
  const int64_t filled = c.pos0 + c.T;
  const std::vector<float> kall = randn(filled * c.kv_heads * c.head_dim);
  const std::vector<float> vall = randn(filled * c.kv_heads * c.head_dim);
  const std::vector<float> q = randn(c.T * c.heads * c.head_dim, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int64_t bsz = block_size > 0 ? block_size : c.capacity;
  const int64_t n_blocks = (c.capacity + bsz - 1) / bsz;
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i) table[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % n_blocks);
  if (n_blocks > 1 && std::gcd(int64_t{7}, n_blocks) != 1) std::iota(table.rbegin(), table.rend(), 0);  // reversed
  KvBatchBuilder fill, step;
  fill.clear(bsz, n_blocks * bsz);
  fill.add(filled, 0, table);
  step.clear(bsz, n_blocks * bsz);
  step.add(c.T, c.pos0, table);
  std::vector<float> out[2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor kc = poisoned(b, {n_blocks, c.kv_heads, bsz, c.head_dim});
    Tensor vc = poisoned(b, {n_blocks, c.kv_heads, bsz, c.head_dim});
    b.kv_append(upload(b, kall, {filled, c.kv_heads * c.head_dim}), upload(b, vall, {filled, c.kv_heads * c.head_dim}),
                fill.batch(), kc, vc);
    Tensor o = poisoned(b, {c.T, c.heads * c.head_dim});
    b.attention(upload(b, q, {c.T, c.heads * c.head_dim}), kc, vc, step.batch(), c.heads, c.window, scale, o);
    out[i] = download(b, o);
  }
  expect_close(out[0], out[1], kExactTol,
               str_cat("attention heads ", c.heads, "/", c.kv_heads, " head_dim ", c.head_dim, " T ", c.T, " pos0 ",
                       c.pos0, " window ", c.window, " capacity ", c.capacity, " block size ", block_size));
}

// Several sequences in one call: decode rows of some, prefill chunks of others, each over its own
// blocks of one shared paged cache (the batched step), against the CPU backend.
void run_batch(Backend& gpu, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t window) {
  CpuBackend& cpu = shared_cpu();
  const int64_t bsz = 16, n_blocks = 64;
  struct Seq {
    int64_t pos0, rows;
  };
  const std::vector<Seq> seqs = {{37, 1}, {0, 9}, {100, 1}, {5, 3}, {250, 1}, {16, 20}, {63, 4}, {1, 1}};
  // Blocks handed out interleaved, as a pool hands them to growing sequences.
  std::vector<std::vector<int32_t>> tables(seqs.size());
  int32_t next = 0;
  for (bool more = true; more;) {
    more = false;
    for (size_t s = 0; s < seqs.size(); ++s)
      if (static_cast<int64_t>(tables[s].size()) * bsz < seqs[s].pos0 + seqs[s].rows) {
        tables[s].push_back(next++ % static_cast<int32_t>(n_blocks));
        more = true;
      }
  }
  ASSERT_LE(next, n_blocks);
  KvBatchBuilder fill, step;
  fill.clear(bsz, n_blocks * bsz);
  step.clear(bsz, n_blocks * bsz);
  int64_t fill_rows = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    fill.add(seqs[s].pos0 + seqs[s].rows, 0, tables[s]);
    step.add(seqs[s].rows, seqs[s].pos0, tables[s]);
    fill_rows += seqs[s].pos0 + seqs[s].rows;
  }
  const int64_t kvw = kv_heads * head_dim, qw = heads * head_dim;
  const std::vector<float> kall = randn(fill_rows * kvw), vall = randn(fill_rows * kvw);
  // Keys and values of position p of sequence s are the same rows in both the fill and the step.
  const std::vector<float> q = randn(step.rows() * qw, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> out[2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor kc = poisoned(b, {n_blocks, kv_heads, bsz, head_dim});
    Tensor vc = poisoned(b, {n_blocks, kv_heads, bsz, head_dim});
    b.kv_append(upload(b, kall, {fill_rows, kvw}), upload(b, vall, {fill_rows, kvw}), fill.batch(), kc, vc);
    Tensor o = poisoned(b, {step.rows(), qw});
    b.attention(upload(b, q, {step.rows(), qw}), kc, vc, step.batch(), heads, window, scale, o);
    out[i] = download(b, o);
  }
  expect_close(out[0], out[1], kExactTol,
               str_cat("batched attention heads ", heads, "/", kv_heads, " head_dim ", head_dim, " window ", window));
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

TEST(CudaAttention, PagedBlocksInAnyOrder) {
  MOE_CUDA_OR_SKIP(gpu);
  for (const int64_t block_size : {16, 5, 1})
    for (const AttnCase& c : {AttnCase{4, 2, 16, 1, 37, 0, 64}, AttnCase{32, 8, 128, 1, 900, 0, 1024},
                              AttnCase{8, 2, 64, 37, 50, 0, 100}, AttnCase{6, 3, 80, 45, 3, 16, 64}})
      run_case(gpu, c, block_size);
}

TEST(CudaAttention, SeveralSequencesInOneCall) {
  MOE_CUDA_OR_SKIP(gpu);
  run_batch(gpu, 4, 2, 16, 0);
  run_batch(gpu, 32, 8, 128, 0);
  run_batch(gpu, 8, 1, 64, 7);
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
