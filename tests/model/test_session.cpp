// Session: a prompt that shares a prefix with what the KV cache holds only prefills the rest,
// and the result equals generating from scratch.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/session.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

class SessionTest : public test::TinyMixtralSuite {
 protected:
  void SetUp() override {
    model_ = Model::load(model_dir(), backend_);
    const ModelConfig& c = model_->config();
    transformer_ = std::make_unique<Transformer>(c, model_->weights(), model_->layout(), backend_, 8);
    cache_ = std::make_unique<KvCache>(backend_, c, model_->layout(), kCapacity);
    fresh_cache_ = std::make_unique<KvCache>(backend_, c, model_->layout(), kCapacity);
    session_ = std::make_unique<Session>(*transformer_, *cache_, c.vocab_size);
  }
  // What a model with nothing cached produces for `prompt`.
  GenerationResult fresh(const std::vector<int32_t>& prompt) {
    return generate(*transformer_, *fresh_cache_, model_->config().vocab_size, prompt, options());
  }
  static GenerationOptions options() {
    GenerationOptions o;
    o.max_new_tokens = 6;
    o.keep_logits = true;
    return o;
  }
  static void expect_same(const GenerationResult& a, const GenerationResult& b) {
    EXPECT_EQ(a.tokens, b.tokens);
    ASSERT_EQ(a.logits.size(), b.logits.size());
    float worst = 0;
    for (size_t i = 0; i < a.logits.size(); ++i) worst = std::max(worst, std::fabs(a.logits[i] - b.logits[i]));
    // Reuse changes only how positions are grouped into forward calls (f32 summation order).
    EXPECT_LE(worst, 1e-5f);
  }

  static constexpr int64_t kCapacity = 64;
  CpuBackend backend_{1};
  std::unique_ptr<Model> model_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<KvCache> cache_, fresh_cache_;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, ContinuationReusesPromptAndReply) {
  const std::vector<int32_t> turn1 = {1, 200, 37, 411, 5};
  const GenerationResult r1 = session_->generate(turn1, options());
  EXPECT_EQ(session_->reused_tokens(), 0);
  expect_same(r1, fresh(turn1));

  // The next prompt repeats the first prompt and the reply, then adds new tokens.
  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1.tokens.begin(), r1.tokens.end());
  turn2.insert(turn2.end(), {9, 300, 17});
  const GenerationResult r2 = session_->generate(turn2, options());
  // Everything but the last reply token (sampled, never fed) was cached.
  EXPECT_EQ(session_->reused_tokens(), static_cast<int64_t>(turn1.size() + r1.tokens.size() - 1));
  EXPECT_EQ(r2.prompt_tokens, static_cast<int64_t>(turn2.size()) - session_->reused_tokens());
  expect_same(r2, fresh(turn2));
}

TEST_F(SessionTest, DivergingPromptTruncatesTheCache) {
  session_->generate(std::vector<int32_t>{1, 200, 37, 411, 5, 6, 7}, options());
  const std::vector<int32_t> other = {1, 200, 37, 99, 98};
  const GenerationResult r = session_->generate(other, options());
  EXPECT_EQ(session_->reused_tokens(), 3);
  expect_same(r, fresh(other));
}

TEST_F(SessionTest, SamePromptTwiceRerunsOnlyTheLastToken) {
  const std::vector<int32_t> prompt = {1, 200, 37, 411, 5};
  const GenerationResult a = session_->generate(prompt, options());
  const GenerationResult b = session_->generate(prompt, options());
  EXPECT_EQ(session_->reused_tokens(), static_cast<int64_t>(prompt.size()) - 1);
  expect_same(a, b);
}

TEST_F(SessionTest, ResetForgetsEverything) {
  session_->generate(std::vector<int32_t>{1, 200, 37}, options());
  session_->reset();
  EXPECT_TRUE(session_->cached_tokens().empty());
  session_->generate(std::vector<int32_t>{1, 200, 37}, options());
  EXPECT_EQ(session_->reused_tokens(), 0);
}

}  // namespace
}  // namespace moe
