// generate(): stopping at EOS or the token limit, capacity and vocabulary errors, kept logits,
// and chunked prefill against one-chunk prefill, on a synthetic Mixtral model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/generator.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

class Generate : public test::TinyMixtralSuite {
 protected:
  void SetUp() override {
    model_ = Model::load(model_dir(), backend_);
    transformer_ = std::make_unique<Transformer>(config(), model_->weights(), model_->layout(), backend_, 16);
    cache_ = std::make_unique<KvCache>(backend_, config(), model_->layout(), kCapacity);
  }
  const ModelConfig& config() const { return model_->config(); }
  GenerationResult run(const std::vector<int32_t>& prompt, const GenerationOptions& opt, const TokenCallback& cb = {}) {
    return generate(*transformer_, *cache_, config().vocab_size, prompt, opt, cb);
  }

  static constexpr int64_t kCapacity = 32;
  CpuBackend backend_{1};
  std::unique_ptr<Model> model_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<KvCache> cache_;
  const std::vector<int32_t> prompt_ = {1, 200, 37, 411, 5, 90};
};

TEST_F(Generate, StopsAtMaxNewTokens) {
  GenerationOptions opt;
  opt.max_new_tokens = 8;
  std::vector<int32_t> streamed;
  const GenerationResult r = run(prompt_, opt, [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(r.stop_reason, "max_new_tokens");
  ASSERT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(streamed, r.tokens);
  EXPECT_EQ(r.prompt_tokens, 6);
  EXPECT_EQ(r.decode_steps, 7);
  EXPECT_TRUE(r.logits.empty());
  for (int32_t t : r.tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, config().vocab_size);
  }
  // The cache holds the prompt and every generated token but the last.
  EXPECT_EQ(cache_->length(), 6 + 7);
}

TEST_F(Generate, GreedyIsDeterministicAndReusesTheCache) {
  GenerationOptions opt;
  opt.max_new_tokens = 6;
  const GenerationResult a = run(prompt_, opt);
  const GenerationResult b = run(prompt_, opt);  // same cache, cleared by generate
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST_F(Generate, StopsAtEos) {
  GenerationOptions opt;
  opt.max_new_tokens = 8;
  const GenerationResult first = run(prompt_, opt);
  ASSERT_EQ(first.tokens.size(), 8u);
  const int32_t stop = first.tokens[3];
  // Greedy may have produced the same id earlier: generation stops at its first occurrence.
  const size_t at =
      static_cast<size_t>(std::find(first.tokens.begin(), first.tokens.end(), stop) - first.tokens.begin());
  ASSERT_LE(at, 3u);

  opt.stop_ids = {stop};
  std::vector<int32_t> streamed;
  const GenerationResult r = run(prompt_, opt, [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(r.stop_reason, "eos");
  const std::vector<int32_t> expected(first.tokens.begin(), first.tokens.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  EXPECT_EQ(r.tokens, expected);  // the stop id is the last token
  EXPECT_EQ(streamed, expected);
  EXPECT_EQ(r.decode_steps, static_cast<int64_t>(at));

  // A stop id among several, and one that is never produced, change nothing else.
  opt.stop_ids = {config().vocab_size - 1 == stop ? 0 : static_cast<int32_t>(config().vocab_size - 1), stop};
  EXPECT_EQ(run(prompt_, opt).tokens, expected);
}

TEST_F(Generate, StopIdOnTheLastAllowedTokenIsEos) {
  GenerationOptions opt;
  opt.max_new_tokens = 4;
  const GenerationResult first = run(prompt_, opt);
  ASSERT_EQ(first.tokens.size(), 4u);
  // Precondition of the test (deterministic for this seeded model): the 4th token is new, so
  // stopping on it cannot end the run earlier.
  ASSERT_EQ(std::find(first.tokens.begin(), first.tokens.begin() + 3, first.tokens[3]), first.tokens.begin() + 3)
      << "the last token repeats an earlier one: pick another prompt for this test";
  opt.stop_ids = {first.tokens[3]};
  const GenerationResult r = run(prompt_, opt);
  EXPECT_EQ(r.tokens, first.tokens);
  EXPECT_EQ(r.stop_reason, "eos");
}

TEST_F(Generate, ZeroNewTokens) {
  GenerationOptions opt;
  opt.max_new_tokens = 0;
  const GenerationResult r = run(prompt_, opt);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.stop_reason, "max_new_tokens");
  EXPECT_EQ(r.prompt_tokens, 6);
}

TEST_F(Generate, OverCapacity) {
  GenerationOptions opt;
  opt.max_new_tokens = kCapacity - 6 + 1;  // prompt 6 + 27 = 33 > 32
  EXPECT_ERROR_CONTAINS(run(prompt_, opt), {"6 tokens", "27", "capacity of 32"});
  opt.max_new_tokens = kCapacity - 6;  // exactly full is fine
  const GenerationResult r = run(prompt_, opt);
  EXPECT_EQ(r.tokens.size(), static_cast<size_t>(kCapacity - 6));
}

TEST_F(Generate, BadArguments) {
  GenerationOptions opt;
  EXPECT_ERROR_CONTAINS(run({}, opt), {"prompt", "no tokens"});
  opt.max_new_tokens = -1;
  EXPECT_ERROR_CONTAINS(run(prompt_, opt), {"max_new_tokens"});
  opt.max_new_tokens = 4;
  opt.sampling.top_p = 0.0f;
  EXPECT_ERROR_CONTAINS(run(prompt_, opt), {"top-p"});
}

TEST_F(Generate, TokenOutsideVocab) {
  GenerationOptions opt;
  opt.max_new_tokens = 2;
  const int32_t bad = static_cast<int32_t>(config().vocab_size);  // 512
  EXPECT_ERROR_CONTAINS(run({1, 2, bad, 4}, opt), {"token id 512", "index 2", "vocabulary", "512"});
  EXPECT_ERROR_CONTAINS(run({-3}, opt), {"token id -3", "vocabulary"});
  // The engine is still usable afterwards.
  EXPECT_EQ(run(prompt_, opt).tokens.size(), 2u);
}

TEST_F(Generate, KeepLogitsRowsArgmaxToTheGreedyTokens) {
  GenerationOptions opt;
  opt.max_new_tokens = 6;
  opt.keep_logits = true;
  const GenerationResult r = run(prompt_, opt);
  const size_t vocab = static_cast<size_t>(config().vocab_size);
  ASSERT_EQ(r.tokens.size(), 6u);
  ASSERT_EQ(r.logits.size(), r.tokens.size() * vocab);
  for (size_t i = 0; i < r.tokens.size(); ++i)
    EXPECT_EQ(argmax(std::span<const float>(r.logits.data() + i * vocab, vocab)), r.tokens[i]) << "row " << i;

  // Same tokens as without keep_logits; and the first row equals the prompt's last-token logits.
  opt.keep_logits = false;
  EXPECT_EQ(run(prompt_, opt).tokens, r.tokens);
  std::vector<float> prefill;
  cache_->clear();
  transformer_->forward(prompt_, *cache_, false, prefill);
  ASSERT_EQ(prefill.size(), vocab);
  for (size_t v = 0; v < vocab; ++v) ASSERT_EQ(prefill[v], r.logits[v]) << "token " << v;
}

TEST_F(Generate, KeepLogitsStopsWithEos) {
  GenerationOptions opt;
  opt.max_new_tokens = 6;
  const GenerationResult first = run(prompt_, opt);
  opt.stop_ids = {first.tokens[0]};
  opt.keep_logits = true;
  const GenerationResult r = run(prompt_, opt);
  EXPECT_EQ(r.tokens.size(), 1u);
  EXPECT_EQ(r.logits.size(), static_cast<size_t>(config().vocab_size));
}

TEST_F(Generate, SampledGenerationIsReproducible) {
  GenerationOptions opt;
  opt.max_new_tokens = 10;
  opt.sampling.temperature = 1.0f;
  opt.sampling.seed = 1234;
  const GenerationResult a = run(prompt_, opt);
  const GenerationResult b = run(prompt_, opt);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 10u);
}

TEST_F(Generate, ChunkedPrefillMatchesOneChunk) {
  const std::vector<int32_t> prompt = {1, 200, 37, 411, 5, 90, 300, 12, 77, 501, 3};  // 11 = 3 + 3 + 3 + 2
  Transformer chunked(config(), model_->weights(), model_->layout(), backend_, 3);
  KvCache chunked_cache(backend_, config(), model_->layout(), kCapacity);
  std::vector<float> one, three;
  transformer_->forward(prompt, *cache_, /*all_logits=*/true, one);
  chunked.forward(prompt, chunked_cache, /*all_logits=*/true, three);
  ASSERT_EQ(one.size(), three.size());
  ASSERT_EQ(one.size(), prompt.size() * static_cast<size_t>(config().vocab_size));
  float worst = 0;
  for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, std::fabs(one[i] - three[i]));
  EXPECT_LE(worst, 1e-5f);
  EXPECT_EQ(chunked_cache.length(), static_cast<int64_t>(prompt.size()));

  // Last-token-only logits agree with the last row, and decode continues identically.
  std::vector<float> last;
  chunked_cache.clear();
  chunked.forward(prompt, chunked_cache, false, last);
  const size_t vocab = static_cast<size_t>(config().vocab_size);
  for (size_t v = 0; v < vocab; ++v) ASSERT_EQ(last[v], three[(prompt.size() - 1) * vocab + v]);
  const int32_t next[1] = {argmax(last)};
  std::vector<float> d1, d3;
  transformer_->forward(next, *cache_, false, d1);
  chunked.forward(next, chunked_cache, false, d3);
  worst = 0;
  for (size_t v = 0; v < vocab; ++v) worst = std::max(worst, std::fabs(d1[v] - d3[v]));
  EXPECT_LE(worst, 1e-5f);

  // Through generate() too: same greedy tokens.
  GenerationOptions opt;
  opt.max_new_tokens = 5;
  KvCache c2(backend_, config(), model_->layout(), kCapacity);
  const GenerationResult r3 = generate(chunked, c2, config().vocab_size, prompt, opt);
  EXPECT_EQ(r3.tokens, run(prompt, opt).tokens);
}

TEST_F(Generate, ForwardPastCapacityFails) {
  std::vector<int32_t> long_prompt(static_cast<size_t>(kCapacity) + 1, 7);
  std::vector<float> logits;
  EXPECT_ERROR_CONTAINS(transformer_->forward(long_prompt, *cache_, false, logits), {"KV cache full", "32"});
}

}  // namespace
}  // namespace moe
