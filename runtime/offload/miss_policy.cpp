#include "runtime/offload/miss_policy.h"

#include <limits>

#include "runtime/core/error.h"

namespace moe {

MissPolicy parse_miss_policy(const std::string& name) {
  if (name == "fetch") return MissPolicy::kFetch;
  if (name == "cpu") return MissPolicy::kCpu;
  if (name == "auto") return MissPolicy::kAuto;
  fail("--miss-policy must be fetch, cpu or auto, got '", name, "'");
}

const char* miss_policy_name(MissPolicy p) {
  switch (p) {
    case MissPolicy::kFetch: return "fetch";
    case MissPolicy::kCpu: return "cpu";
    case MissPolicy::kAuto: return "auto";
  }
  return "?";
}

double fetch_seconds(const MissCost& c) {
  if (c.link_bytes_per_s <= 0) return std::numeric_limits<double>::infinity();
  return c.copy_queue_s + static_cast<double>(c.expert_bytes) / c.link_bytes_per_s + c.gpu_expert_s;
}

double host_compute_seconds(const MissCost& c) {
  if (c.cpu_bytes_per_s <= 0) return std::numeric_limits<double>::infinity();
  // Memory-bound for a few tokens (the weights are read once), compute-bound for many.
  const double read = static_cast<double>(c.expert_bytes) / c.cpu_bytes_per_s;
  const double flops = 2.0 * static_cast<double>(c.expert_weights) * static_cast<double>(c.tokens);
  const double compute = c.cpu_flops > 0 ? flops / c.cpu_flops : 0;
  return read > compute ? read : compute;
}

MissAction choose_miss_action(const MissCost& c) {
  return fetch_seconds(c) <= host_compute_seconds(c) ? MissAction::kFetch : MissAction::kComputeOnHost;
}

}  // namespace moe
