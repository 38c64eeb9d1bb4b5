// Several sequences in flight through a pipeline: each rank keeps one KV cache per sequence and
// works through the sequences in a fixed round, so while stage 1 runs sequence A's layers, stage 0
// already runs sequence B's, and the last stage's sampled token goes straight back to stage 0 for
// that sequence's next step. With S >= stages sequences every stage is busy (the pipeline fills);
// with S = 1 there is no overlap and the result is the single-sequence forward. Greedy decoding,
// every rank calling run() with the same prompts (under mpirun every rank has the same argv).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/stage_pass.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/transformer.h"

namespace moe::parallel {

struct PipelinedDecodeResult {
  std::vector<std::vector<int32_t>> tokens;  // per sequence: the new tokens (the prompt's greedy continuation)
  double prefill_seconds = 0;
  double decode_seconds = 0;  // the steps after the first token, all sequences
  int64_t decode_tokens = 0;  // tokens produced in decode_seconds, all sequences
  PipelineCounters counters;  // this rank's stage-to-stage transfers during decode
};

// caches[s] holds sequence s (its prompt plus new_tokens positions) on this rank. `control` (host
// memory) carries the tokens, `data` the hidden states (the same communicator, or NCCL).
PipelinedDecodeResult pipelined_decode(Transformer& t, const ParallelLayout& layout, Communicator& control,
                                       Communicator& data, Backend& backend, int64_t vocab_size,
                                       std::span<const std::vector<int32_t>> prompts, int64_t new_tokens,
                                       std::span<KvCache* const> caches);

}  // namespace moe::parallel
