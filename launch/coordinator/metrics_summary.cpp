#include "launch/coordinator/metrics_summary.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace moe::coordinator {
namespace {

double ratio(double num, double den) {
  return den > 0 ? num / den : 0;
}
double ratio(uint64_t num, uint64_t den) {
  return ratio(static_cast<double>(num), static_cast<double>(den));
}

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * f);
  return buf;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

StepTotals& StepTotals::operator+=(const StepMetrics& s) {
  steps += 1;
  tokens += s.tokens;
  seconds += s.seconds;
  compute_seconds += s.compute_seconds;
  comm_wait_seconds += s.comm_wait_seconds;
  bubble_seconds += s.bubble_seconds;
  cache_hits += s.cache_hits;
  cache_misses += s.cache_misses;
  prefetch_predicted += s.prefetch_predicted;
  prefetch_used += s.prefetch_used;
  prefetch_predicted_and_used += s.prefetch_predicted_and_used;
  bytes_vram += s.bytes_vram;
  bytes_ram += s.bytes_ram;
  bytes_nvme += s.bytes_nvme;
  return *this;
}

StepTotals& StepTotals::operator+=(const StepTotals& o) {
  steps += o.steps;
  tokens += o.tokens;
  seconds += o.seconds;
  compute_seconds += o.compute_seconds;
  comm_wait_seconds += o.comm_wait_seconds;
  bubble_seconds += o.bubble_seconds;
  cache_hits += o.cache_hits;
  cache_misses += o.cache_misses;
  prefetch_predicted += o.prefetch_predicted;
  prefetch_used += o.prefetch_used;
  prefetch_predicted_and_used += o.prefetch_predicted_and_used;
  bytes_vram += o.bytes_vram;
  bytes_ram += o.bytes_ram;
  bytes_nvme += o.bytes_nvme;
  return *this;
}

double WorkerMetrics::utilisation() const {
  return ratio(totals.compute_seconds, totals.seconds);
}

MetricsSummary summarize(std::span<const WorkerMetrics> workers) {
  MetricsSummary m;
  m.workers.assign(workers.begin(), workers.end());

  const WorkerMetrics* ref = nullptr;
  for (const auto& w : workers) {
    if (w.world_rank == 0 && w.totals.steps > 0) {
      ref = &w;
      break;
    }
  }
  if (!ref) {
    for (const auto& w : workers) {
      if (w.totals.steps > 0 && (!ref || w.totals.tokens > ref->totals.tokens)) ref = &w;
    }
  }
  if (ref) {
    m.reference_worker = ref->worker_id;
    m.steps = ref->totals.steps;
    m.tokens = ref->totals.tokens;
    m.seconds = ref->totals.seconds;
    m.tokens_per_s = ratio(static_cast<double>(m.tokens), m.seconds);
  }

  StepTotals all;
  std::map<int, StageMetrics> stages;
  for (const auto& w : workers) {
    all += w.totals;
    if (w.pp_rank < 0) continue;
    StageMetrics& s = stages[w.pp_rank];
    s.pp_rank = w.pp_rank;
    s.workers += 1;
    s.compute_seconds += w.totals.compute_seconds;
    s.wall_seconds += w.totals.seconds;
  }
  for (auto& [rank, s] : stages) {
    s.utilisation = ratio(s.compute_seconds, s.wall_seconds);
    m.stages.push_back(s);
  }
  m.bubble_fraction = ratio(all.bubble_seconds, all.seconds);
  m.comm_wait_fraction = ratio(all.comm_wait_seconds, all.seconds);
  m.cache_hit_rate = ratio(all.cache_hits, all.cache_hits + all.cache_misses);
  m.prefetch_recall = ratio(all.prefetch_predicted_and_used, all.prefetch_used);
  m.prefetch_precision = ratio(all.prefetch_predicted_and_used, all.prefetch_predicted);
  m.bytes_vram = all.bytes_vram;
  m.bytes_ram = all.bytes_ram;
  m.bytes_nvme = all.bytes_nvme;
  return m;
}

std::string MetricsSummary::describe() const {
  char buf[160];
  std::string out;
  if (reference_worker.empty()) return "no metrics reported\n";
  std::snprintf(buf, sizeof buf, "tokens/s    %.2f (%llu tokens in %.3f s, %llu steps, worker %s)\n", tokens_per_s,
                static_cast<unsigned long long>(tokens), seconds, static_cast<unsigned long long>(steps),
                reference_worker.c_str());
  out += buf;
  for (const auto& s : stages) {
    std::snprintf(buf, sizeof buf, "stage %-5d utilisation %s (%d worker%s, compute %.3f s of %.3f s)\n", s.pp_rank,
                  percent(s.utilisation).c_str(), s.workers, s.workers == 1 ? "" : "s", s.compute_seconds,
                  s.wall_seconds);
    out += buf;
  }
  out += "bubble      " + percent(bubble_fraction) + ", communication wait " + percent(comm_wait_fraction) + "\n";
  out += "experts     cache hit rate " + percent(cache_hit_rate) + ", prefetch recall " + percent(prefetch_recall) +
         ", precision " + percent(prefetch_precision) + "\n";
  out += "bytes       vram " + mib(bytes_vram) + ", ram " + mib(bytes_ram) + ", nvme " + mib(bytes_nvme) + "\n";
  return out;
}

}  // namespace moe::coordinator
