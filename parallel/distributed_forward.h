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
  // Rank 0 (through Transformer::step, the batch engine of `moe serve`): every rank runs the
  // step over its own KvStorage with rank 0's block tables (every rank's storage has the same
  // number of blocks; the scheduler on rank 0 hands them out).
  void step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits) override;
  // Ranks other than 0: run commands until rank 0 calls finish(), forward commands with `cache`
  // (moe run / chat), step commands with `kv` (moe serve).
  void serve(KvCache& cache) { serve(&cache, nullptr); }
  void serve(KvStorage& kv) { serve(nullptr, &kv); }
  // Rank 0: ends the other ranks' serve().
  void finish();

  const PipelineCounters& counters() const { return pass_.counters; }
  // Cross-device speculative prefetch between the stages (StagePass::enable_stage_hints); every
  // rank with the same depth.
  void enable_stage_hints(int64_t depth) { pass_.enable_stage_hints(depth); }
  uint64_t hints_sent() const { return pass_.hints_sent; }
  uint64_t hints_received() const { return pass_.hints_received; }

 private:
  struct Header {
    int64_t kind = 0;    // kStop, kForward or kStep
    int64_t pos0 = 0;    // kForward: the cache position it starts at; kStep: the number of chunks
    int64_t tokens = 0;  // kForward: tokens; kStep: int32 words of the step's description
    int64_t all_logits = 0;
  };
  void serve(KvCache* cache, KvStorage* kv);
  void run(const Header& h, std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits);
  // kStep: the description (per chunk pos0, tokens, blocks, logits; then every chunk's tokens,
  // then every chunk's blocks) back into chunks_, pointing into it.
  void unpack_step(int64_t n_chunks);
  void run_step(KvStorage& kv, std::vector<float>& logits);
  // The last stage's first rank hands `rows` rows of logits to rank 0.
  void return_logits(size_t rows, std::vector<float>& logits);

  const ParallelLayout& layout_;
  Communicator& world_;  // control
  int64_t vocab_;
  StagePass pass_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  std::vector<SeqChunk> chunks_;
  bool finished_ = false;
};

}  // namespace moe::parallel
