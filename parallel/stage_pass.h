// One pipeline stage's part of a forward over one sequence's rows: the tokens (first stage) or the
// previous stage's hidden rows in, this stage's layers in chunks of the Transformer's step size,
// the hidden rows out to the next stage, or (last stage) the logits; or one multi-sequence step of
// the batch engine the same way. What DistributedForward and pipelined_decode both run.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "parallel/communicator.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/transformer.h"

namespace moe::parallel {

// Time and bytes of one rank's transfers to and from the other stages.
struct PipelineCounters {
  uint64_t sends = 0, recvs = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  double send_seconds = 0, recv_seconds = 0;  // recv time includes waiting for the previous stage
};

class StagePass final : public LayerObserver {
 public:
  // `data` holds layout.world_size() ranks; the previous and next stages' counterparts of this rank
  // are stage_size() ranks before and after it. References must outlive this object.
  StagePass(Transformer& t, const ParallelLayout& layout, Communicator& data, Backend& backend, int64_t vocab_size);

  // n rows at the cache's current position. Last stage: logits = the last row's (vocab floats),
  // or every row's (n x vocab) when all_logits; other stages leave `logits` alone.
  void run(std::span<const int32_t> tokens, int64_t n, KvCache& cache, bool all_logits, std::vector<float>& logits);

  // One multi-sequence step of the batch engine (Transformer::step's contract): every chunk's
  // rows through this stage's layers over `kv`, at the chunks' own positions and blocks. Last
  // stage: logits = one row of vocab floats per chunk with `logits` set, in chunk order.
  void run_step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits);

  // Cross-device speculative prefetch (both ends must agree: every rank calls this with the same
  // depth): a stage with a next stage sends its hidden rows after layer max(begin, end - depth)
  // ahead of its output; a stage with a previous stage receives them first and hands them to its
  // expert provider's hint(), which predicts its first `depth` layers' experts and starts loading
  // them while the previous stage still runs. Only where the next stage waits idle (one sequence
  // or one batch step through the pipeline at a time): DistributedForward, not pipelined_decode.
  void enable_stage_hints(int64_t depth);
  void after_layer(int64_t layer, int64_t rows) override;
  uint64_t hints_sent = 0, hints_received = 0;

  // Counts a transfer made outside run() (the logits to rank 0) started at t0.
  void count_send(uint64_t bytes, double seconds);
  void count_recv(uint64_t bytes, double seconds);

  PipelineCounters counters;

 private:
  Transformer& t_;
  const ParallelLayout& layout_;
  Communicator& data_;
  Backend& backend_;
  int64_t vocab_;
  std::vector<float> staging_;
  std::vector<int32_t> rows_;
  std::vector<int32_t> step_tokens_;
  std::vector<SeqRows> step_seqs_;
  int64_t hint_layer_ = -1;  // send after this global layer; -1: no hints sent
  bool receive_hints_ = false;
  Tensor hint_;  // (max_step_tokens, H): the previous stage's hint
  // Around this stage's layers: the hint the previous stage sent (received before its output),
  // and the observer that sends ours.
  void receive_hint(int64_t rows);
  void begin_layers();
  void end_layers();
};

}  // namespace moe::parallel
