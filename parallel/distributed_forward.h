// A model split over the ranks of an MPI (or thread, or NCCL) world: pipeline stages of layer
// ranges, each stage's ranks splitting heads and widths (tensor parallel) and experts (expert
// parallel). Rank 0 drives: its Transformer hands every forward() to this delegate, which
// broadcasts the tokens, runs rank 0's part, and returns the logits the last stage sent back.
// Every other rank runs serve() until rank 0 calls finish(). So `generate` and `Session`, which
// only call forward(), run unchanged on rank 0, and a KV-cache truncation there (prefix reuse) is
// repeated on every rank (each command carries the cache position it starts at).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/stage_pass.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/transformer.h"

namespace moe::parallel {

class DistributedForward final : public ForwardDelegate {
 public:
  // `control` (host memory: commands, tokens, logits) and `data` (the hidden states between
  // stages; NCCL on GPUs, or the same communicator) each hold layout.world_size() ranks laid out
  // as ParallelLayout::rank() says. References must outlive this object. On rank 0 also call
  // transformer.set_forward_delegate(this).
  DistributedForward(Transformer& transformer, const ParallelLayout& layout, Communicator& control, Communicator& data,
                     Backend& backend, int64_t vocab_size);

  // Rank 0 (through Transformer::forward).
  void forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits, std::vector<float>& logits) override;
  // Ranks other than 0: run commands with `cache` until rank 0 calls finish().
  void serve(KvCache& cache);
  // Rank 0: ends the other ranks' serve().
  void finish();

  const PipelineCounters& counters() const { return pass_.counters; }

 private:
  struct Header {
    int64_t kind = 0;  // kStop or kForward
    int64_t pos0 = 0;
    int64_t tokens = 0;
    int64_t all_logits = 0;
  };
  void run(const Header& h, std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits);

  const ParallelLayout& layout_;
  Communicator& world_;  // control
  int64_t vocab_;
  StagePass pass_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  bool finished_ = false;
};

}  // namespace moe::parallel
