// The coordinator's view of how the job ran: each worker's per-step figures summed
// (WorkerMetrics), and the job's aggregate (MetricsSummary): tokens/s, per-stage utilisation
// (compute / wall), pipeline bubble fraction, expert cache hit rate, prefetch recall/precision and
// bytes per tier. Pure functions over counts; CoordinatorServer fills the inputs from ReportMetrics.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "launch/coordinator/control_types.h"

namespace moe::coordinator {

// Sum over the steps a worker reported.
struct StepTotals {
  uint64_t steps = 0;
  uint64_t tokens = 0;
  double seconds = 0, compute_seconds = 0, comm_wait_seconds = 0, bubble_seconds = 0;
  uint64_t cache_hits = 0, cache_misses = 0;
  uint64_t prefetch_predicted = 0, prefetch_used = 0, prefetch_predicted_and_used = 0;
  uint64_t bytes_vram = 0, bytes_ram = 0, bytes_nvme = 0;

  StepTotals& operator+=(const StepMetrics& s);
  StepTotals& operator+=(const StepTotals& o);
};

struct WorkerMetrics {
  std::string worker_id;
  std::string host;
  int world_rank = -1;  // -1: no plan yet
  int pp_rank = -1;
  StepTotals totals;
  // compute / wall over its steps (0 without steps)
  double utilisation() const;
};

struct StageMetrics {
  int pp_rank = 0;
  int workers = 0;
  double compute_seconds = 0;  // summed over the stage's workers
  double wall_seconds = 0;
  double utilisation = 0;  // compute / wall
};

struct MetricsSummary {
  // Throughput as the reference worker counted it: world rank 0, or the worker with the most
  // tokens when rank 0 reported none (every stage sees every token).
  std::string reference_worker;
  uint64_t steps = 0;
  uint64_t tokens = 0;
  double seconds = 0;
  double tokens_per_s = 0;
  std::vector<StageMetrics> stages;  // by pp rank; workers without a plan are left out
  // Over every worker's wall time:
  double bubble_fraction = 0;
  double comm_wait_fraction = 0;
  // Over every worker's counts (0 when there were none):
  double cache_hit_rate = 0;      // hits / (hits + misses)
  double prefetch_recall = 0;     // predicted_and_used / used
  double prefetch_precision = 0;  // predicted_and_used / predicted
  uint64_t bytes_vram = 0, bytes_ram = 0, bytes_nvme = 0;
  std::vector<WorkerMetrics> workers;

  // A few lines for the coordinator's report.
  std::string describe() const;
};

MetricsSummary summarize(std::span<const WorkerMetrics> workers);

}  // namespace moe::coordinator
