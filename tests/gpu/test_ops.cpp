// Every small op of the CUDA backend against the CPU backend on fresh random inputs, outputs
// poisoned with NaN first, at awkward sizes.
#include <algorithm>
#include <numeric>

#include "gpu_test_util.h"
#include "runtime/backend/kv_batch.h"

namespace moe {
namespace {

using namespace gpu_test;

TEST(CudaOps, EmbeddingEveryStorage) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  const std::vector<int32_t> ids = {5, 0, 36, 5, 17, 2, 31};
  const int64_t T = static_cast<int64_t>(ids.size()), V = 37;
  std::vector<HostWeight> tables;
  tables.reserve(32);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) tables.push_back(dense_weight({V, 96}, t, 1.0f));
  for (QuantType q : {QuantType::kQ8, QuantType::kQ4, QuantType::kQ3, QuantType::kQ2})
    for (int g : {16, 32, 64, 128, 256}) tables.push_back(quant_weight(V, 3 * g, QuantFormat{q, g}, 1.0f));
  for (const HostWeight& w : tables) {
    const int64_t D = w.shape[1];
    std::vector<float> out[2];
    Backend* bs[2] = {&gpu, &cpu};
    for (int i = 0; i < 2; ++i) {
      Backend& b = *bs[i];
      Tensor table = b.load_weight(w.view());
      Tensor id = b.alloc(DType::kI32, {T});
      b.copy_from_host(ids.data(), ids.size() * sizeof(int32_t), id);
      Tensor o = poisoned(b, {T, D});
      b.embedding(id, table, o);
      out[i] = download(b, o);
    }
    expect_close(out[0], out[1], 0.0,
                 str_cat("embedding ", w.quant ? quant_format_name(*w.quant) : dtype_name(w.dtype)));
  }
}

TEST(CudaOps, RmsNormRowsAndHeads) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  struct Case {
    int64_t rows, width, D;  // x (rows, width) normalised over D (per head when D < width)
    DType wt;
    bool alias;
  };
  for (const Case& c : {Case{1, 64, 64, DType::kF32, false}, Case{3, 100, 100, DType::kBF16, true},
                        Case{33, 4096, 4096, DType::kF16, false}, Case{5, 4 * 16, 16, DType::kBF16, true},
                        Case{7, 8 * 128, 128, DType::kF32, true}, Case{2, 3 * 80, 240, DType::kF16, false}}) {
    const std::vector<float> x = randn(static_cast<size_t>(c.rows * c.width), 2.0f);
    const HostWeight w = dense_weight({c.D}, c.wt, 1.0f);
    std::vector<float> out[2];
    Backend* bs[2] = {&gpu, &cpu};
    for (int i = 0; i < 2; ++i) {
      Backend& b = *bs[i];
      Tensor xt = upload(b, x, {c.rows, c.width});
      Tensor y = c.alias ? xt : poisoned(b, {c.rows, c.width});
      b.rms_norm(xt, b.load_weight(w.view()), 1e-6f, y);
      out[i] = download(b, y);
    }
    expect_close(out[0], out[1], kExactTol, str_cat("rms_norm rows ", c.rows, " width ", c.width, " D ", c.D));
  }
}

TEST(CudaOps, RopeAtPositions) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  for (int64_t head_dim : {16, 64, 128, 80})
    for (int64_t T : {1, 7})
      for (int64_t pos0 : {0, 1000, 32000}) {
        const int64_t heads = 3;
        const std::vector<float> x = randn(static_cast<size_t>(T * heads * head_dim));
        std::vector<int32_t> positions(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t)  // not consecutive: rows of different sequences
          positions[static_cast<size_t>(t)] = static_cast<int32_t>(pos0 + (t * 37) % 101);
        std::vector<float> out[2];
        Backend* bs[2] = {&gpu, &cpu};
        for (int i = 0; i < 2; ++i) {
          Tensor xt = upload(*bs[i], x, {T, heads * head_dim});
          bs[i]->rope(xt, heads, head_dim, positions, 1e6f);
          out[i] = download(*bs[i], xt);
        }
        expect_close(out[0], out[1], 1e-8, str_cat("rope head_dim ", head_dim, " T ", T, " pos0 ", pos0));
      }
}

TEST(CudaOps, ClampAddFillZeroSigmoidGate) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  const int64_t T = 5, H = 333;
  const std::vector<float> x = randn(T * H, 3.0f), y = randn(T * H), g = randn(T), acc = randn(T * H);
  std::vector<float> out[2][4];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor xt = upload(b, x, {T, H});
    b.clamp(xt, 1.5f);
    out[i][0] = download(b, xt);
    Tensor yt = upload(b, y, {T, H});
    b.add(xt, yt);
    out[i][1] = download(b, xt);
    Tensor at = upload(b, acc, {T, H});
    b.add_sigmoid_gated(yt, upload(b, g, {T, 1}), at);
    out[i][2] = download(b, at);
    Tensor z = poisoned(b, {T, H});
    b.fill_zero(z);
    out[i][3] = download(b, z);
  }
  expect_close(out[0][0], out[1][0], 0.0, "clamp");
  expect_close(out[0][1], out[1][1], 0.0, "add");
  expect_close(out[0][2], out[1][2], kExactTol, "add_sigmoid_gated");
  EXPECT_TRUE(std::all_of(out[0][3].begin(), out[0][3].end(), [](float v) { return v == 0.0f; }));
}

TEST(CudaOps, GatherAndScatterRows) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  const int64_t T = 9, H = 130;
  const std::vector<int32_t> rows = {8, 0, 3, 7};
  const std::vector<float> scale = {0.25f, -1.5f, 0.7f, 2.0f};
  const std::vector<float> x = randn(T * H), acc = randn(T * H), part = randn(rows.size() * H);
  std::vector<float> out[2][2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor g = poisoned(b, {static_cast<int64_t>(rows.size()), H});
    b.gather_rows(upload(b, x, {T, H}), rows, g);
    out[i][0] = download(b, g);
    Tensor a = upload(b, acc, {T, H});
    b.scatter_add_rows(upload(b, part, {static_cast<int64_t>(rows.size()), H}), rows, scale, a);
    out[i][1] = download(b, a);
  }
  expect_close(out[0][0], out[1][0], 0.0, "gather_rows");
  expect_close(out[0][1], out[1][1], kExactTol, "scatter_add_rows");
}

TEST(CudaOps, RouteTopkAndWeightingRule) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  for (int64_t E : {8, 60, 64, 128, 256})
    for (int64_t k : {1, 2, 4, 8})
      for (bool renorm : {true, false})
        for (int64_t T : {1, 37}) {
          if (k > E) continue;
          const std::vector<float> logits = randn(T * E, 2.0f);
          std::vector<int32_t> ids[2];
          std::vector<float> w[2];
          Backend* bs[2] = {&gpu, &cpu};
          for (int i = 0; i < 2; ++i) {
            ids[i].assign(static_cast<size_t>(T * k), -1);
            w[i].assign(static_cast<size_t>(T * k), std::nanf(""));
            bs[i]->route_topk(upload(*bs[i], logits, {T, E}), k, renorm, ids[i], w[i]);
          }
          const std::string what = str_cat("route_topk E ", E, " k ", k, " renorm ", renorm, " T ", T);
          // Ids must agree except where two probabilities tie to within libm's ulps.
          for (size_t j = 0; j < ids[0].size(); ++j) {
            if (ids[0][j] != ids[1][j]) {
              EXPECT_NEAR(w[0][j], w[1][j], 1e-6f * std::fabs(w[1][j])) << what << ": position " << j;
            }
          }
          expect_close(w[0], w[1], 1e-12, what);
        }
}

TEST(CudaOps, KvAppendMatches) {
  MOE_CUDA_OR_SKIP(gpu);
  CpuBackend& cpu = shared_cpu();
  // Two sequences over a paged cache of 8 blocks of 7 rows: 6 rows at 41.. and 3 rows at 2...
  const int64_t n_kv = 3, bsz = 7, n_blocks = 8, D = 48, T = 9;
  const std::vector<int32_t> table_a = {5, 0, 7, 2, 6, 1, 4}, table_b = {3};
  KvBatchBuilder batch;
  batch.clear(bsz, n_blocks * bsz);
  batch.add(6, 41, table_a);
  batch.add(3, 2, table_b);
  const std::vector<float> k = randn(T * n_kv * D), v = randn(T * n_kv * D), init = randn(n_blocks * n_kv * bsz * D);
  std::vector<float> out[2][2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor kc = upload(b, init, {n_blocks, n_kv, bsz, D}), vc = upload(b, init, {n_blocks, n_kv, bsz, D});
    b.kv_append(upload(b, k, {T, n_kv * D}), upload(b, v, {T, n_kv * D}), batch.batch(), kc, vc);
    out[i][0] = download(b, kc);
    out[i][1] = download(b, vc);
  }
  expect_close(out[0][0], out[1][0], 0.0, "k cache");
  expect_close(out[0][1], out[1][1], 0.0, "v cache");
}

}  // namespace
}  // namespace moe
