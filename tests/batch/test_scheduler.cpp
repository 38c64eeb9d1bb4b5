// The continuous-batching policy on its own (no model): decodes first, chunked prefill in the
// token budget, admission first come first served within slots and blocks, preemption of the
// newest sequence when a decode needs a block, and blocks always accounted.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <memory>
#include <vector>

#include "runtime/backend/cpu_backend.h"
#include "runtime/batch/scheduler.h"
#include "runtime/core/error.h"
#include "runtime/model/config.h"

namespace moe {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest()
      : config_(load_model_config(std::filesystem::path(MOE_TEST_DATA_DIR) / "golden" / "mixtral_sharded_bf16")),
        layout_(ParallelLayout::single(config_.num_layers)) {}

  KvPool make_pool(int64_t blocks, int64_t block_size = 4, int64_t context = 64) {
    return KvPool(backend_, config_, layout_, blocks, block_size, context);
  }
  Sequence* add(size_t prompt_len) {
    RequestParams p;
    p.prompt.assign(prompt_len, 1);
    p.max_tokens = 8;
    seqs_.push_back(std::make_unique<Sequence>(seqs_.size(), p, nullptr));
    return seqs_.back().get();
  }
  // Marks the plan as run: every entry's tokens are cached, and completed prompts sample a token.
  static void run(const StepPlan& plan) {
    for (const StepEntry& e : plan.entries) {
      e.seq->cached += e.tokens;
      if (e.seq->cached == static_cast<int64_t>(e.seq->tokens.size())) e.seq->tokens.push_back(7);
    }
  }

  CpuBackend backend_{1};
  ModelConfig config_;
  ParallelLayout layout_;
  std::vector<std::unique_ptr<Sequence>> seqs_;
};

TEST_F(SchedulerTest, DecodesFirstThenChunkedPrefillInTheBudget) {
  KvPool pool = make_pool(64);
  Scheduler s(pool, SchedulerLimits{4, 10, 0});
  std::deque<Sequence*> waiting = {add(3), add(20), add(2)};
  std::vector<Sequence*> running;
  StepPlan plan;
  s.plan(waiting, running, plan);
  // 3 tokens of the first, then 7 of the 20-token prompt: the budget is spent, the third waits.
  ASSERT_EQ(plan.entries.size(), 2u);
  EXPECT_EQ(plan.entries[0].tokens, 3);
  EXPECT_EQ(plan.entries[1].tokens, 7);
  EXPECT_EQ(waiting.size(), 1u);
  EXPECT_EQ(plan.rows(), 10);
  run(plan);
  s.plan(waiting, running, plan);
  // The first decodes (1 row), the long prompt continues (9), no budget left for the third.
  ASSERT_EQ(plan.entries.size(), 2u);
  EXPECT_EQ(plan.entries[0].seq, running[0]);
  EXPECT_EQ(plan.entries[0].tokens, 1);
  EXPECT_EQ(plan.entries[1].tokens, 9);
  run(plan);
  s.plan(waiting, running, plan);
  // Decode 1 + the rest of the long prompt (4) + the third's whole prompt (2).
  ASSERT_EQ(plan.entries.size(), 3u);
  EXPECT_EQ(plan.entries[1].tokens, 4);
  EXPECT_EQ(plan.entries[2].tokens, 2);
  EXPECT_TRUE(waiting.empty());
}

TEST_F(SchedulerTest, AdmissionWaitsForSlotsAndBlocks) {
  KvPool pool = make_pool(6);  // 24 positions
  Scheduler s(pool, SchedulerLimits{2, 64, 0});
  std::deque<Sequence*> waiting = {add(5), add(5), add(5)};
  std::vector<Sequence*> running;
  StepPlan plan;
  s.plan(waiting, running, plan);
  EXPECT_EQ(running.size(), 2u) << "two slots";
  EXPECT_EQ(waiting.size(), 1u);
  EXPECT_EQ(pool.used_blocks(), 4);  // 2 blocks for each 5-token prompt
  KvPool small = make_pool(3);
  Scheduler t(small, SchedulerLimits{4, 64, 0});
  std::deque<Sequence*> w2 = {add(5), add(5)};
  std::vector<Sequence*> r2;
  t.plan(w2, r2, plan);
  EXPECT_EQ(r2.size(), 1u) << "the second prompt needs 2 blocks and only 1 is free";
  EXPECT_EQ(w2.size(), 1u);
}

TEST_F(SchedulerTest, ADecodeWithoutABlockPreemptsTheNewestSequence) {
  KvPool pool = make_pool(4);  // 16 positions
  Scheduler s(pool, SchedulerLimits{4, 64, 0});
  Sequence* a = add(4);
  Sequence* b = add(4);
  Sequence* c = add(4);
  std::deque<Sequence*> waiting = {a, b, c};
  std::vector<Sequence*> running;
  StepPlan plan;
  s.plan(waiting, running, plan);
  ASSERT_EQ(running.size(), 3u);
  run(plan);  // each has 4 cached + 1 sampled: the decode needs a 2nd block each
  s.plan(waiting, running, plan);
  // a takes the last free block; b finds none and preempts c (the newest); then b gets c's block.
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(plan.preempted[0], c);
  EXPECT_EQ(c->cached, 0);
  EXPECT_TRUE(c->blocks.empty());
  EXPECT_EQ(waiting.front(), c);
  ASSERT_EQ(plan.entries.size(), 2u);
  EXPECT_EQ(plan.entries[0].seq, a);
  EXPECT_EQ(plan.entries[1].seq, b);
  EXPECT_EQ(pool.free_blocks(), 0);
  // Once a finishes and frees its blocks, c comes back with its prompt and sampled token to recompute.
  s.release(*a);
  running.erase(running.begin());
  run(plan);
  s.plan(waiting, running, plan);
  ASSERT_FALSE(plan.admitted.empty());
  EXPECT_EQ(plan.admitted[0], c);
  EXPECT_EQ(plan.entries.back().seq, c);
  EXPECT_EQ(plan.entries.back().tokens, 5) << "prompt + the token it had sampled";
}

TEST_F(SchedulerTest, LimitsAreChecked) {
  KvPool pool = make_pool(4);
  EXPECT_THROW(Scheduler s0(pool, SchedulerLimits{0, 8, 0}), Error);
  EXPECT_THROW(Scheduler s1(pool, SchedulerLimits{8, 4, 0}), Error);
}

TEST_F(SchedulerTest, PoolReserveAndRelease) {
  KvPool pool = make_pool(5, 4, 16);
  std::vector<int32_t> a, b;
  EXPECT_TRUE(pool.reserve(a, 9));
  EXPECT_EQ(a.size(), 3u);
  EXPECT_FALSE(pool.reserve(b, 9)) << "3 blocks needed, 2 free";
  EXPECT_TRUE(b.empty()) << "a failed reserve changes nothing";
  EXPECT_TRUE(pool.reserve(b, 8));
  EXPECT_EQ(pool.free_blocks(), 0);
  EXPECT_THROW(pool.reserve(a, 17), Error) << "beyond the context";
  pool.release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(pool.free_blocks(), 3);
}

}  // namespace
}  // namespace moe
