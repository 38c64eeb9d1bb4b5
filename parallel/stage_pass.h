// One pipeline stage's part of a forward over one sequence's rows: the tokens (first stage) or the
// previous stage's hidden rows in, this stage's layers in chunks of the Transformer's step size,
// the hidden rows out to the next stage, or (last stage) the logits. What DistributedForward and
// pipelined_decode both run.
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

class StagePass {
 public:
  // `data` holds layout.world_size() ranks; the previous and next stages' counterparts of this rank
  // are stage_size() ranks before and after it. References must outlive this object.
  StagePass(Transformer& t, const ParallelLayout& layout, Communicator& data, Backend& backend, int64_t vocab_size);

  // n rows at the cache's current position. Last stage: logits = the last row's (vocab floats),
  // or every row's (n x vocab) when all_logits; other stages leave `logits` alone.
  void run(std::span<const int32_t> tokens, int64_t n, KvCache& cache, bool all_logits, std::vector<float>& logits);

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
};

}  // namespace moe::parallel
