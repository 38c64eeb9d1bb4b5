// Turning `--tp/--pp/--ep/--layers/--placement` and a world of ranks into what one rank runs:
// its ParallelLayout (checked against the model before anything is loaded) and the stage's
// communicators and collectives for its Transformer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "parallel/comm_collectives.h"
#include "parallel/communicator.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"

namespace moe::parallel {

struct ParallelSpec {
  int tp = 1, pp = 1, ep = 1;
  // "0:12,12:32"; "params" or empty: balanced by parameters (memory); "decode": by the bytes one
  // decoded token reads (time: top-k experts, the LM head)
  std::string layers;
  std::string placement;  // a `moe profile` JSON: experts placed by measured use; empty: e % ep
  int world_size() const { return tp * pp * ep; }
  bool is_single() const { return world_size() == 1; }
  // "tp 2 x pp 1 x ep 1"
  std::string describe() const;
};

// The layout of world rank `rank` of `world_size`: pipeline stage rank / (tp * ep), then expert
// rank, then tensor rank (ParallelLayout::rank()). Throws moe::Error with the numbers when the
// world does not match tp x pp x ep or the model cannot be split that way (heads, KV heads,
// expert widths, layers).
ParallelLayout make_layout(const ModelConfig& c, const ParallelSpec& s, int rank, int world_size);

// Every stage's layer range for the spec (parsed or balanced).
std::vector<LayerRange> stage_ranges(const ModelConfig& c, const ParallelSpec& s);

// This rank's stage and tensor-parallel groups (split from `world`; every rank calls this) and
// the collectives its Transformer takes.
struct StageComms {
  std::unique_ptr<Communicator> stage, tensor;
  std::unique_ptr<CommCollectives> collectives;
};
StageComms make_stage_comms(Communicator& world, const ParallelLayout& layout, Backend& backend);

}  // namespace moe::parallel
