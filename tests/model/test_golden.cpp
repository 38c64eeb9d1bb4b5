// The whole model against Hugging Face transformers: for every fixture in
// tests/fixtures/golden (written by tests/golden/make_golden.py with the real transformers
// library), our prompt logits, teacher-forced decode logits and greedy tokens must match.
//
// Tolerance: |ours - transformers| <= 2e-4 absolute on logits whose spread is ~3 (std).
// Both sides compute in f32 over identical weights (the fixture script rounds the f32 model
// to the stored dtype before computing), so the only differences are f32 summation order:
// transformers itself moves by ~4e-6 between two memory layouts of the same f32 weights. Any
// real mistake (a missed norm, wrong eps or theta, a wrong window, a routing slip) moves logits
// by 1e-2 to several units, far above 2e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/generator.h"
#include "runtime/io/npy.h"
#include "runtime/model/model.h"

namespace moe {
namespace {

constexpr float kLogitTolerance = 2e-4f;

std::filesystem::path golden_dir() {
  return std::filesystem::path(MOE_TEST_DATA_DIR) / "golden";
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(golden_dir()))
    if (std::filesystem::exists(e.path() / "golden.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct Golden {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  NpyArray prompt_logits;  // (prompt, vocab)
  NpyArray decode_logits;  // (steps, vocab)
  std::string expert_form;
};

Golden read_golden(const std::filesystem::path& dir) {
  std::ifstream in(dir / "golden.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
  g.generated = j.at("generated_ids").get<std::vector<int32_t>>();
  g.expert_form = j.at("expert_form").get<std::string>();
  g.prompt_logits = read_npy(dir / "prompt_logits.npy");
  g.decode_logits = read_npy(dir / "decode_logits.npy");
  return g;
}

// Largest |a - b| over a row, and where.
std::pair<float, size_t> max_abs_diff(const float* a, const float* b, size_t n) {
  std::pair<float, size_t> worst{0.0f, 0};
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= worst.first)) worst = {d, i};  // NaN counts as worst
  }
  return worst;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesTransformers) {
  const std::filesystem::path dir = golden_dir() / GetParam();
  const Golden g = read_golden(dir);
  CpuBackend backend;
  std::unique_ptr<Model> model = Model::load(dir, backend);
  const ModelConfig& c = model->config();
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  ASSERT_EQ(g.prompt_logits.shape, (std::vector<int64_t>{static_cast<int64_t>(g.prompt.size()), c.vocab_size}));
  ASSERT_EQ(g.decode_logits.shape[0] + 1, static_cast<int64_t>(g.generated.size()));
  EXPECT_EQ(model->weights().expert_form == ExpertForm::kFused ? "fused" : "per_expert", g.expert_form);

  const int64_t capacity = static_cast<int64_t>(g.prompt.size() + g.generated.size());
  // A prefill chunk smaller than the prompt, so chunked prefill is exercised too.
  Transformer transformer(c, model->weights(), model->layout(), backend, 5);
  KvCache cache(backend, c, model->layout(), capacity);

  // 1. Prefill: logits at every prompt position.
  std::vector<float> logits;
  transformer.forward(g.prompt, cache, /*all_logits=*/true, logits);
  float worst = 0.0f;
  for (size_t t = 0; t < g.prompt.size(); ++t) {
    const auto [d, at] = max_abs_diff(logits.data() + t * vocab, g.prompt_logits.data.data() + t * vocab, vocab);
    EXPECT_LE(d, kLogitTolerance) << "prompt position " << t << ", token " << at;
    worst = std::max(worst, d);
  }
  // 2. Decode with the KV cache, fed transformers' tokens (teacher forcing).
  for (size_t s = 0; s + 1 < g.generated.size(); ++s) {
    const int32_t one[1] = {g.generated[s]};
    transformer.forward(one, cache, false, logits);
    const auto [d, at] = max_abs_diff(logits.data(), g.decode_logits.data.data() + s * vocab, vocab);
    EXPECT_LE(d, kLogitTolerance) << "decode step " << s << ", token " << at;
    worst = std::max(worst, d);
  }
  // 3. Our own greedy generation gives transformers' tokens.
  GenerationOptions opt;
  opt.max_new_tokens = static_cast<int64_t>(g.generated.size());
  const GenerationResult r = generate(transformer, cache, c.vocab_size, g.prompt, opt);
  EXPECT_EQ(r.tokens, g.generated);
  RecordProperty("max_abs_logit_diff", std::to_string(worst));
  std::printf("[ golden   ] %s: max |logit diff| = %.3g over %zu prompt + %zu decode rows\n", GetParam().c_str(),
              static_cast<double>(worst), g.prompt.size(), g.generated.size() - 1);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(fixture_names()),
                         [](const auto& p) { return p.param; });

TEST(GoldenFixtures, AllFiveArePresent) {
  // Guards against the parameterised suite silently running on nothing.
  EXPECT_GE(fixture_names().size(), 5u);
}

}  // namespace
}  // namespace moe
