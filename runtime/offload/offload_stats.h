// Per-step metrics of the expert tiers (a step = one forward call: a prefill chunk or one
// decoded token), counted on the hot path, printed and written at the end of a run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/offload/prefetcher.h"

namespace moe {

struct OffloadStepStats {
  int64_t tokens = 0;
  uint64_t used = 0;           // (layer, expert) pairs computed
  uint64_t hits = 0;           // already in the RAM tier, or on its way, when the router chose it
  uint64_t misses = 0;         // needed a demand read
  uint64_t prefetch_hits = 0;  // hits whose load a prefetch started
  uint64_t streamed = 0;       // misses computed from a staging slot without caching (--miss-policy cpu/auto)
  uint64_t evictions = 0;
  uint64_t prefetch_reads = 0;    // loads a prefetch started
  uint64_t prefetch_refused = 0;  // predictions admission dropped (their victim was worth more)
  uint64_t bytes_nvme = 0;        // read from the packed store (the drive)
  uint64_t bytes_ram = 0;         // expert bytes the computation read from RAM slots
  PrefetchCounts prefetch;        // recall and precision of this step's predictions
  double seconds = 0;             // the step, from begin_step to end_step
  double wait_seconds = 0;        // the forward pass waiting for expert reads
  double speculate_seconds = 0;   // speculative routing and issuing prefetches
  double adopt_seconds = 0;       // backend layout rewrites of loaded experts
  // The VRAM tier (GPU runs; zeros on the CPU backend). There, hits/misses/evictions are the VRAM
  // cache's, bytes_ram is what the host -> device copies read (= bytes_h2d) plus what the CPU read
  // to compute missed experts, and wait_seconds the host's waits for drive reads.
  uint64_t host_hits = 0;                // VRAM misses found in the RAM tier (no drive read)
  uint64_t host_computed = 0;            // misses computed on the CPU from their host copy
  uint64_t copies = 0;                   // host -> device expert copies queued (demand and prefetch)
  uint64_t copy_waits = 0;               // experts whose copy was still running when their ops were queued
  uint64_t bytes_h2d = 0;                // bytes copied host -> device
  uint64_t bytes_vram = 0;               // expert bytes the device computed from VRAM slots
  double host_compute_wait_seconds = 0;  // the forward pass waiting for CPU-computed experts

  OffloadStepStats& operator+=(const OffloadStepStats& o);
  double hit_rate() const { return used ? static_cast<double>(hits) / static_cast<double>(used) : 0; }
};

class OffloadStats {
 public:
  void reserve(size_t steps) { steps_.reserve(steps); }
  // Records a step: into the running total, and into the per-step log unless that is off.
  void add(const OffloadStepStats& s) {
    if (keep_steps_) steps_.push_back(s);
    std::lock_guard lock(total_mutex_);
    running_ += s;
  }
  // A long-running server keeps only the running total (the log would grow without bound).
  void set_keep_steps(bool on) { keep_steps_ = on; }
  // The sum over every step so far; safe to call from another thread while steps run.
  OffloadStepStats running_total() const {
    std::lock_guard lock(total_mutex_);
    return running_;
  }
  // The fast tier is VRAM (a GPU run): the summary says so and adds the GPU lines.
  void set_vram_tier(bool on) { vram_tier_ = on; }
  const std::vector<OffloadStepStats>& steps() const { return steps_; }
  // Sum over steps [begin, end) (all by default).
  OffloadStepStats total(size_t begin = 0, size_t end = SIZE_MAX) const;
  // A few lines for the stats block: hit rate, recall/precision, bytes per tier per token, time per phase.
  std::string summary(const std::string& indent = "") const;
  // One JSON object per step (JSON lines) plus a final {"total": ...} line. Throws moe::Error
  // naming the file when it cannot be written.
  void write_jsonl(const std::filesystem::path& path) const;

 private:
  std::vector<OffloadStepStats> steps_;
  bool vram_tier_ = false;
  bool keep_steps_ = true;
  mutable std::mutex total_mutex_;
  OffloadStepStats running_;
};

}  // namespace moe
