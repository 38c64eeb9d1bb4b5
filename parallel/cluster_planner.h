// The coordinator's planner over parallel/cluster_plan.h's types: what a model costs in bytes,
// and which registered worker runs what (parallel degrees, pipeline stages grouped by speed,
// layer ranges balanced by predicted time under each worker's RAM, expert offload budgets).
// Pure functions.
#pragma once

#include <span>

#include "parallel/cluster_plan.h"
#include "runtime/model/config.h"

namespace moe::parallel {

// Storage bytes of `c` at `bytes_per_param` (2 for bf16, 0.5625 for q4 in groups of 32 with a
// 2-byte scale, ...), counted as layer_params() counts parameters, each figure rounded to whole
// bytes:
//   layer_dense[i] + layer_experts[i]  = layer_params(c).layers[i]
//   layer_token[i]                     = layer_params(c, true).layers[i] (= dense + top-k experts)
//   layer_experts[i]                   = its routed experts (num_experts * expert_bytes, up to
//                                        rounding) on MoE layers, else 0
//   first_extra                        = the embedding
//   last_extra = last_token            = final norm + LM head. A tied head is still counted: a last
//                                        stage that is not the first binds its own embedding copy.
// Throws moe::Error when bytes_per_param is not positive or layer_is_moe is not num_layers long.
ModelBytes model_bytes(const ModelConfig& c, double bytes_per_param);

// A worker's decode speed in bytes/s: compute_bytes_per_s, else memory_bandwidth, else 1.0 (so
// that workers with no measured rate at all compare as equals).
double worker_speed(const WorkerInfo& w);

// Plans `workers` (their order is the `worker` index of the assignments) for a model of bytes `m`
// and shape `c`.
//
// Degrees: tp * pp * ep must equal workers.size(). All of r.tp/pp/ep 0: pp = world, tp = ep = 1
// (throws when the model has fewer layers than workers). Some 0: the missing ones are filled so
// the product is the world size; pp takes the remainder when missing, else tp, else ep, and the
// other missing ones are 1. Throws moe::Error with the numbers when the product cannot match or
// the model does not split that way (heads % tp, tp vs KV heads either way, expert / dense /
// shared widths % tp, ep > num_experts or ep > 1 without experts, pp > layers).
//
// Stages: workers sorted by worker_speed() descending (ties by index) are cut into groups of
// tp * ep consecutive workers; group s is stage s, its j-th member gets ep_rank j / tp and
// tp_rank j % tp, world_rank = pp_rank * (ep * tp) + ep_rank * tp + tp_rank.
//
// A member's share of its stage (per rank): dense bytes / tp, routed experts / (tp * ep); the
// embedding is replicated on the first stage; the LM head is split by tp when untied and vocab %
// tp == 0, else replicated; a single stage with a tied head holds one copy of it. Per token it
// reads the same split of layer_token (dense / tp, top-k experts / (tp * ep)), one embedding row
// on the first stage and last_token on the last.
//
// Memory: a member holds dense + experts <= ram_bytes - r.ram_reserve. When only the dense part
// fits and drive_bandwidth > 0, it offloads: expert_ram_budget = what is left, which must hold at
// least ceil(top_k * moe_layers / ep) expert shards (expert_bytes / tp) — one token's experts.
// Its time per token = per-token bytes / speed + (1 - budget / expert share) * per-token expert
// bytes / drive_bandwidth. A stage's time is its slowest member's.
//
// Layer ranges: contiguous, non-empty, covering [0, num_layers), minimising the largest stage
// time over every split that fits (ties: the earliest split). Throws InfeasiblePlan when none
// fits, with the model's totals, the workers' RAM, and the member that misses by the most in
// the split that misses by the least. Link bandwidth and latency are not modelled yet.
ClusterPlan plan_cluster(const ModelBytes& m, const ModelConfig& c, std::span<const WorkerInfo> workers,
                         const PlanRequest& r);

}  // namespace moe::parallel
