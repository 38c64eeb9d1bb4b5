// The whole model on the CUDA backend against the transformers golden fixtures
// (tests/fixtures/golden; tests/model/test_golden.cpp does the same for the CPU backend), with a
// prefill chunk smaller than the prompt (decode-sized and tensor-core-sized pieces) and one
// larger; and CUDA-graph decoding against eager decoding, which must agree exactly.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpu_test_util.h"
#include "runtime/engine/generator.h"
#include "runtime/io/npy.h"
#include "runtime/model/model.h"
#if MOE_HAVE_CUDA
#include "runtime/backend/cuda_backend.h"
#endif

namespace moe {
namespace {

using namespace gpu_test;

constexpr float kLogitTolerance = 2e-4f;  // as the CPU golden test

// MOE_TEST_DATA_DIR in the environment overrides the configure-time path: the GPU machine runs
// a bundled copy of this program from another checkout (docs/cuda-backend.md).
std::filesystem::path golden_dir() {
  const char* env = std::getenv("MOE_TEST_DATA_DIR");
  return std::filesystem::path(env != nullptr ? env : MOE_TEST_DATA_DIR) / "golden";
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(golden_dir()))
    if (std::filesystem::exists(e.path() / "golden.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float worst = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

void check_fixture(Backend& gpu, const std::string& name, int64_t chunk) {
  const std::filesystem::path dir = golden_dir() / name;
  std::ifstream in(dir / "golden.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
  const auto generated = j.at("generated_ids").get<std::vector<int32_t>>();
  const NpyArray prompt_logits = read_npy(dir / "prompt_logits.npy");
  const NpyArray decode_logits = read_npy(dir / "decode_logits.npy");

  std::unique_ptr<Model> model = Model::load(dir, gpu);
  const ModelConfig& c = model->config();
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  const int64_t capacity = static_cast<int64_t>(prompt.size() + generated.size());
  Transformer transformer(c, model->weights(), model->layout(), gpu, chunk);
  KvCache cache(gpu, c, model->layout(), capacity);
  std::vector<float> logits;
  transformer.forward(prompt, cache, /*all_logits=*/true, logits);
  float worst = 0.0f;
  for (size_t t = 0; t < prompt.size(); ++t) {
    const float d = max_abs_diff(logits.data() + t * vocab, prompt_logits.data.data() + t * vocab, vocab);
    EXPECT_LE(d, kLogitTolerance) << name << " chunk " << chunk << ": prompt position " << t;
    worst = std::max(worst, d);
  }
  for (size_t s = 0; s + 1 < generated.size(); ++s) {
    const int32_t one[1] = {generated[s]};
    transformer.forward(one, cache, false, logits);
    const float d = max_abs_diff(logits.data(), decode_logits.data.data() + s * vocab, vocab);
    EXPECT_LE(d, kLogitTolerance) << name << " chunk " << chunk << ": decode step " << s;
    worst = std::max(worst, d);
  }
  GenerationOptions opt;
  opt.max_new_tokens = static_cast<int64_t>(generated.size());
  const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, opt);
  EXPECT_EQ(r.tokens, generated) << name << " chunk " << chunk;
  std::printf("[ golden   ] cuda %s chunk %lld: max |logit diff| = %.3g\n", name.c_str(), static_cast<long long>(chunk),
              static_cast<double>(worst));
}

class CudaGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGoldenTest, MatchesTransformers) {
  MOE_CUDA_OR_SKIP(gpu);
  for (int64_t chunk : {5, 64}) check_fixture(gpu, GetParam(), chunk);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGoldenTest, ::testing::ValuesIn(fixture_names()),
                         [](const auto& p) { return p.param; });

#if MOE_HAVE_CUDA
// Greedy decoding with graph capture equals eager decoding bit for bit, and graphs were used.
TEST(CudaGraphs, DecodeWithGraphsEqualsEager) {
  std::string why;
  if (shared_cuda(&why) == nullptr) GTEST_SKIP() << "no CUDA device: skipped (" << why << ")";
  const std::filesystem::path dir = golden_dir() / "qwen2_moe_shared_tied_bf16";
  std::vector<float> last[2];
  std::vector<int32_t> tokens[2];
  CudaBackendStats stats[2];
  for (int graphs = 0; graphs < 2; ++graphs) {
    CudaBackendOptions o;
    o.graphs = graphs == 1;
    CudaBackend b(o);
    std::unique_ptr<Model> model = Model::load(dir, b);
    const ModelConfig& c = model->config();
    Transformer transformer(c, model->weights(), model->layout(), b, 8);
    KvCache cache(b, c, model->layout(), 64);
    GenerationOptions opt;
    opt.max_new_tokens = 24;
    const std::vector<int32_t> prompt = {1, 15, 27, 300, 42, 7, 99, 3, 11, 5, 8};
    tokens[graphs] = generate(transformer, cache, c.vocab_size, prompt, opt).tokens;
    const int32_t one[1] = {tokens[graphs].back()};
    transformer.forward(one, cache, false, last[graphs]);
    stats[graphs] = b.stats();
  }
  EXPECT_EQ(tokens[0], tokens[1]);
  EXPECT_EQ(last[0], last[1]);
  EXPECT_EQ(stats[0].graph_launches, 0u);
  EXPECT_GT(stats[1].graph_launches, 0u);
  EXPECT_GT(stats[1].graph_updates, 0u);
}
#endif

}  // namespace
}  // namespace moe
