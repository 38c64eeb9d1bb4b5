// Continuous batching: which sequences run in the next step and with how many tokens. Requests
// join and leave at step boundaries. Every running sequence that is decoding gets its one token
// first, so a long prompt never stalls them; the token budget left over goes to prefill chunks
// (chunked prefill) of the running sequences and then of newly admitted ones, first come first
// served. A waiting request is admitted when there is a free sequence slot and the KV pool has
// blocks for all of its pending tokens (and a small watermark); a decoding sequence that needs a
// new block when the pool is full preempts the most recently admitted sequence, which frees its
// blocks and goes back to the front of the queue to be recomputed later (vLLM's recompute
// preemption): the pool never overflows and nothing runs out of memory.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "runtime/batch/sequence.h"
#include "runtime/engine/kv_pool.h"

namespace moe {

struct SchedulerLimits {
  int64_t max_seqs = 8;           // sequences per step (--max-seqs)
  int64_t max_step_tokens = 256;  // token rows per step: decodes + prefill chunks (--max-batch-tokens)
  int64_t watermark_blocks = 0;   // free blocks an admission must leave (room for decodes to grow)
};

// One sequence's share of a step: it feeds tokens[cached .. cached + tokens).
struct StepEntry {
  Sequence* seq = nullptr;
  int64_t tokens = 0;
};

struct StepPlan {
  std::vector<StepEntry> entries;    // decodes first, then prefill chunks
  std::vector<Sequence*> admitted;   // moved from waiting to running by this plan
  std::vector<Sequence*> preempted;  // moved from running back to the front of waiting

  void clear() {
    entries.clear();
    admitted.clear();
    preempted.clear();
  }
  int64_t rows() const;
};

class Scheduler {
 public:
  // The pool must outlive the scheduler. Throws moe::Error for limits below 1.
  Scheduler(KvPool& pool, const SchedulerLimits& limits);
  const SchedulerLimits& limits() const { return limits_; }

  // Plans one step over `running` (admitted, in admission order) and `waiting` (first in line at
  // the front): reserves the blocks the step needs, admits and preempts (updating both lists and
  // the sequences' blocks and `cached`), and writes the step to `plan`. An empty plan means there
  // is nothing to run.
  void plan(std::deque<Sequence*>& waiting, std::vector<Sequence*>& running, StepPlan& plan);

  // Frees a sequence's blocks (it ended or was cancelled).
  void release(Sequence& s) { pool_.release(s.blocks); }

 private:
  KvPool& pool_;
  SchedulerLimits limits_;
};

}  // namespace moe
