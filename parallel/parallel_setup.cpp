#include "parallel/parallel_setup.h"

#include "parallel/expert_placement.h"
#include "parallel/layer_planner.h"
#include "runtime/core/error.h"

namespace moe::parallel {

std::string ParallelSpec::describe() const {
  return str_cat("tp ", tp, " x pp ", pp, " x ep ", ep);
}

std::vector<LayerRange> stage_ranges(const ModelConfig& c, const ParallelSpec& s) {
  MOE_CHECK(s.pp <= c.num_layers, "--pp ", s.pp, ": the model has only ", c.num_layers, " layers");
  if (s.layers.empty() || s.layers == "params") return balance_layers(layer_params(c), s.pp);
  if (s.layers == "decode") return balance_layers(layer_params(c, /*per_token=*/true), s.pp);
  return parse_layer_ranges(s.layers, c.num_layers, s.pp);
}

ParallelLayout make_layout(const ModelConfig& c, const ParallelSpec& s, int rank, int world_size) {
  MOE_CHECK(s.tp >= 1 && s.pp >= 1 && s.ep >= 1, "--tp, --pp and --ep must be at least 1 (got ", s.describe(), ")");
  MOE_CHECK(world_size == s.world_size(), s.describe(), " needs ", s.world_size(), " processes but ", world_size,
            world_size == 1 ? " is running (launch with mpirun -np " : " are running (launch with mpirun -np ",
            s.world_size(), ")");
  MOE_CHECK(c.num_heads % s.tp == 0, "--tp ", s.tp, " does not divide num_attention_heads (", c.num_heads, ")");
  MOE_CHECK(c.num_kv_heads % s.tp == 0 || s.tp % c.num_kv_heads == 0, "--tp ", s.tp, " and num_key_value_heads (",
            c.num_kv_heads, ") do not divide one another");
  MOE_CHECK(c.expert_intermediate % s.tp == 0, "--tp ", s.tp, " does not divide the experts' intermediate size (",
            c.expert_intermediate, ")");
  MOE_CHECK(c.shared_intermediate % s.tp == 0 && c.dense_intermediate % s.tp == 0, "--tp ", s.tp,
            " does not divide the shared expert's or dense MLP's intermediate size (", c.shared_intermediate, ", ",
            c.dense_intermediate, ")");
  MOE_CHECK(s.ep <= c.num_experts, "--ep ", s.ep, ": the model has only ", c.num_experts, " routed experts");
  const std::vector<LayerRange> ranges = stage_ranges(c, s);
  const int stage = s.tp * s.ep;
  const int pp_rank = rank / stage, ep_rank = (rank % stage) / s.tp, tp_rank = rank % s.tp;
  ParallelLayout L(s.tp, tp_rank, s.pp, pp_rank, ranges[static_cast<size_t>(pp_rank)], c.num_layers, s.ep, ep_rank);
  if (s.ep > 1) {
    const std::vector<int32_t> owners =
        s.placement.empty() ? round_robin_experts(c.num_layers, c.num_experts, s.ep)
                            : balance_experts(read_routing_counts(s.placement, c.num_layers, c.num_experts),
                                              c.num_layers, c.num_experts, s.ep);
    L.set_expert_owners(owners, c.num_experts);
  }
  return L;
}

StageComms make_stage_comms(Communicator& world, const ParallelLayout& layout, Backend& backend) {
  MOE_CHECK(world.size() == layout.world_size() && world.rank() == layout.rank(), "world rank ", world.rank(), " of ",
            world.size(), " does not match the layout (", layout.describe(), ")");
  StageComms s;
  // Colours: the stage; the stage's tensor group (same pipeline stage and expert rank).
  s.stage = world.split(layout.pp_rank(), world.rank());
  s.tensor = world.split(layout.pp_rank() * layout.ep_size() + layout.ep_rank(), world.rank());
  s.collectives = std::make_unique<CommCollectives>(*s.tensor, *s.stage, backend);
  return s;
}

}  // namespace moe::parallel
