// The batched multi-sequence engine: many requests generate at once over one Transformer and one
// paged KV pool, with continuous batching (runtime/batch/scheduler.h). Each step is one forward
// pass over every running sequence's rows (decode tokens and prefill chunks together), so dense
// weights and each routed expert are read once per step for all the rows routed to them; then
// each sequence samples with its own parameters and streams its tokens and text to its callback.
//
// Threads: submit(), cancel() and stats() may be called from any thread. Steps run on one thread
// at a time: the engine's own (start()/stop()) or the caller's (step(), run_until_idle()).
// Callbacks run on the stepping thread, between steps' forward passes; they must be quick (hand
// the output to another thread) and must not call back into the engine except cancel().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/batch/request.h"
#include "runtime/batch/scheduler.h"
#include "runtime/batch/sequence.h"
#include "runtime/engine/kv_pool.h"
#include "runtime/engine/transformer.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe {

struct BatchEngineOptions {
  SchedulerLimits limits;
  // Weight bytes a step reads besides the routed experts, and per routed (layer, expert) it runs:
  // the traffic figure behind the bytes-read bound (weight_traffic() below computes them).
  uint64_t dense_bytes_per_step = 0;
  uint64_t bytes_per_expert = 0;
};

// Counters since the engine was made; a consistent snapshot.
struct BatchEngineStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  uint64_t requests_submitted = 0;
  uint64_t requests_finished[5] = {};  // by FinishReason
  uint64_t prompt_tokens = 0;          // prompt tokens of admitted requests (each counted once)
  uint64_t generated_tokens = 0;
  uint64_t prefill_rows = 0;  // rows fed while prefilling (recomputation after preemption included)
  uint64_t decode_rows = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  uint64_t expert_calls = 0;       // (layer, expert) pairs run, each reading that expert once
  uint64_t weight_bytes_read = 0;  // dense bytes per step + expert calls x bytes per expert
  double busy_seconds = 0;         // time spent in steps
};

// dense_bytes_per_step and bytes_per_expert of `weights` (storage bytes, quantized at their size).
void weight_traffic(const ModelWeights& weights, BatchEngineOptions& o);

class BatchEngine {
 public:
  // References must outlive the engine. `tokenizer` may be null (no text, no stop strings).
  // The Transformer must have room for limits.max_seqs sequences and limits.max_step_tokens rows.
  BatchEngine(Transformer& model, KvPool& pool, int64_t vocab_size, const Tokenizer* tokenizer,
              const BatchEngineOptions& options);
  ~BatchEngine();
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // Queues a request; returns its id. Throws moe::Error, before queuing anything, for a request
  // that can never run: no prompt, a token id outside the vocabulary, prompt + max_tokens beyond
  // the context or beyond what the whole KV pool holds, stop strings without a tokenizer, bad
  // sampling parameters, a stopped engine.
  uint64_t submit(RequestParams params, OutputCallback on_output);
  // Ends request `id` at the next step boundary (its callback gets FinishReason::kCancelled). An
  // id that already finished, or was never given, is ignored.
  void cancel(uint64_t id);

  // Runs one step on the calling thread; false when there was nothing to run.
  bool step();
  // Steps until no request is left (single-threaded use: tests, benchmarks).
  void run_until_idle();
  // Runs steps on an engine thread until stop(). stop() cancels whatever is left and joins.
  void start();
  void stop();

  BatchEngineStats stats() const;
  int64_t context() const { return pool_.max_seq_len(); }
  const SchedulerLimits& limits() const { return scheduler_.limits(); }

 private:
  void drain_inbox();
  void finish(Sequence& s, FinishReason why, const std::string& error = {});
  void sample_and_emit(Sequence& s, float* logits);
  // Completes out_ with what every output carries, marks `s` with out_.finish and calls its callback.
  void deliver(Sequence& s);
  void retire_finished();
  void loop();
  void update_stats_locked();

  Transformer& model_;
  KvPool& pool_;
  int64_t vocab_;
  const Tokenizer* tokenizer_;
  BatchEngineOptions options_;
  Scheduler scheduler_;

  // Engine-thread state.
  std::vector<std::unique_ptr<Sequence>> owned_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;
  StepPlan plan_;
  std::vector<SeqChunk> chunks_;
  std::vector<float> logits_;
  RequestOutput out_;  // reused for every callback

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> cancels_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  bool has_work_ = false;     // the engine thread's view, published under mutex_
  int64_t waiting_seen_ = 0;  // waiting_.size() as the engine thread last published it
  BatchEngineStats stats_;
  std::thread thread_;
};

}  // namespace moe
