#include "runtime/batch/scheduler.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace moe {

int64_t StepPlan::rows() const {
  int64_t n = 0;
  for (const StepEntry& e : entries) n += e.tokens;
  return n;
}

Scheduler::Scheduler(KvPool& pool, const SchedulerLimits& limits) : pool_(pool), limits_(limits) {
  MOE_CHECK(limits.max_seqs >= 1, "--max-seqs must be at least 1, got ", limits.max_seqs);
  MOE_CHECK(limits.max_step_tokens >= limits.max_seqs, "--max-batch-tokens (", limits.max_step_tokens,
            ") must be at least --max-seqs (", limits.max_seqs, "): every running sequence decodes each step");
  MOE_CHECK(limits.watermark_blocks >= 0, "scheduler: negative watermark");
}

void Scheduler::plan(std::deque<Sequence*>& waiting, std::vector<Sequence*>& running, StepPlan& out) {
  out.clear();
  int64_t budget = limits_.max_step_tokens;

  // 1. One token for every decoding sequence; when the pool has no block for one, the most
  //    recently admitted sequence is preempted (possibly this one) until it fits.
  for (size_t i = 0; i < running.size();) {
    Sequence* s = running[i];
    if (s->pending() != 1) {
      ++i;
      continue;
    }
    if (pool_.reserve(s->blocks, s->cached + 1)) {
      out.entries.push_back({s, 1});
      --budget;
      ++i;
      continue;
    }
    Sequence* victim = running.back();
    running.pop_back();
    pool_.release(victim->blocks);
    victim->cached = 0;
    ++victim->preemptions;
    waiting.push_front(victim);
    out.preempted.push_back(victim);
  }

  // 2. Prefill chunks of running sequences (their blocks were reserved at admission).
  for (Sequence* s : running) {
    if (budget <= 0) break;
    if (s->pending() <= 1) continue;
    const int64_t n = std::min(s->pending(), budget);
    out.entries.push_back({s, n});
    budget -= n;
  }

  // 3. Admissions, first come first served, while slots, budget and blocks allow.
  while (budget > 0 && static_cast<int64_t>(running.size()) < limits_.max_seqs && !waiting.empty()) {
    Sequence* s = waiting.front();
    if (s->cancelled) break;  // the engine ends it before the next plan
    const int64_t positions = static_cast<int64_t>(s->tokens.size());
    const int64_t need = pool_.blocks_for(positions) - static_cast<int64_t>(s->blocks.size());
    const int64_t watermark = running.empty() ? 0 : limits_.watermark_blocks;
    if (pool_.free_blocks() - need < watermark) break;
    if (!pool_.reserve(s->blocks, positions)) break;
    waiting.pop_front();
    running.push_back(s);
    out.admitted.push_back(s);
    const int64_t n = std::min(s->pending(), budget);
    out.entries.push_back({s, n});
    budget -= n;
  }
}

}  // namespace moe
