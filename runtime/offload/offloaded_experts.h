// The CPU backend's expert tiers: routed experts live in the packed store's experts.bin (the
// NVMe tier) and a RAM budget of fixed-size slots holds the resident ones (the fast tier),
// managed by an ExpertCache with a replacement policy. The forward pass obtains each expert's
// weights through the ExpertProvider interface:
//   begin_layer  pins the hits, decides each miss (fetch into a slot, or stream through a
//                staging slot: --miss-policy) and starts reads for as many misses as slots
//                allow, so the drive works while earlier experts compute;
//   acquire      waits for the expert's read if it must, makes the bytes the backend's own
//                layout (Backend::adopt_weight_in_place, once per load) and returns views;
//   end_layer    speculative prefetch: the routers of layers l+1..l+d applied to the current
//                hidden state, predictions queued by deadline and read ahead on the I/O
//                thread(s) into slots held until their layer has run.
// The GPU half plugs in at the same places: VRAM slots are another SlotPool + ExpertCache,
// reads land in pinned host slots and a copy stream moves them, and MissAction picks between
// waiting for the copy and computing on the host.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine/expert_provider.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"
#include "runtime/offload/expert_cache.h"
#include "runtime/offload/expert_layout.h"
#include "runtime/offload/expert_reader.h"
#include "runtime/offload/miss_policy.h"
#include "runtime/offload/offload_stats.h"
#include "runtime/offload/prefetcher.h"
#include "runtime/offload/slot_pool.h"
#include "runtime/offload/speculative_router.h"

namespace moe {

struct OffloadOptions {
  std::string cache_policy = "lru";  // lru | lfu
  MissPolicy miss_policy = MissPolicy::kFetch;
  int64_t prefetch_depth = 1;  // layers ahead the speculative routing looks; 0: no prefetch
  bool cache = true;           // false: drop every expert after use ("no cache" ablation)
  bool lookahead = true;       // start a layer's reads when its routing is known (false: one at a time, on demand)
  ReaderKind reader = ReaderKind::kAuto;
  int pread_threads = 4;
  int64_t max_prefetch_slots = -1;  // slots prefetches may hold at once; -1: half the cache
  // Prefetch admission (on by default; off: the ablation "prefetch, no admission"): a prefetch
  // read starts only while no demand read is in flight and none other of its own (the drive is
  // idle), into a free slot or over a victim the current step has not used and the policy ranks
  // below the newcomer; the queue is pumped again whenever the drive goes idle. So a wrong
  // prediction costs at most one read's delay and never evicts what this step needs.
  bool prefetch_admission = true;
  // GPU tier only (gpu_offloaded_experts.h): the figures of the miss cost model (--miss-policy auto,
  // choose_miss_action) and the CPU expert worker.
  double link_gbs = 25;      // host -> device copies (PCIe), GB/s
  double cpu_gbs = 40;       // the CPU reading an expert's weights, GB/s
  double cpu_gflops = 200;   // the CPU's multiply-add rate, GFLOP/s
  double device_gbs = 2000;  // device memory bandwidth (the expert's GPU compute), GB/s
  int host_threads = 0;      // OpenMP threads computing missed experts on the CPU (0: all cores)
};

class OffloadedExperts final : public ExpertProvider {
 public:
  // `slots` cache slots of layout.largest_bytes() each (from plan_host_tier), plus
  // kStagingSlots for streamed misses. Opens experts.bin for reads. `weights` supplies the
  // norms and routers for speculative routing. References must outlive this object.
  OffloadedExperts(const ExpertLayout& layout, const ModelConfig& config, const ModelWeights& weights, Backend& backend,
                   int64_t max_step_tokens, int64_t slots, const OffloadOptions& options);
  ~OffloadedExperts() override;
  OffloadedExperts(const OffloadedExperts&) = delete;
  OffloadedExperts& operator=(const OffloadedExperts&) = delete;

  // Slots outside the cache (for budget planning): the staging slot through which misses are
  // streamed (--miss-policy cpu/auto, or any miss that finds every cache slot pinned).
  static constexpr int64_t kStagingSlots = 1;

  // Static placement: reads `keys` (most used first) into the cache before serving and keeps
  // them there for good, up to `max_slots`. Returns how many were placed.
  int64_t place_static(std::span<const ExpertKey> keys, int64_t max_slots);

  void begin_step(int64_t n_tokens) override;
  void begin_layer(int64_t layer, std::span<const int32_t> experts) override;
  MlpWeights acquire(int64_t layer, int32_t expert) override;
  void release(int64_t layer, int32_t expert) override;
  void end_layer(int64_t layer, const Tensor& hidden) override;
  void hint(int64_t after_layer, const Tensor& hidden) override;
  void end_step() override;

  const OffloadStats& stats() const { return stats_; }
  // Off: only the running total of the step stats is kept (a server's steps never end).
  void keep_step_log(bool on) { stats_.set_keep_steps(on); }
  const ExpertCache& cache() const { return cache_; }
  const ExpertReader& reader() const { return *reader_; }
  const PrefetchCounts& prefetch_totals() const { return prefetcher_.totals(); }
  uint64_t slot_bytes() const { return pool_.slot_bytes(); }
  std::string describe() const;

 private:
  struct SlotInfo {
    ReadCompletion done;
    MlpWeights weights;  // views over the slot, in the backend's layout once adopted
    bool adopted = false;
    bool from_prefetch = false;  // loaded by a prefetch and not used since
    bool held = false;           // pinned by a prefetch hold
    uint64_t used_step = 0;      // the last step (steps_, from 1) that acquired it
  };
  struct Entry {  // one routed expert of the current layer
    int32_t expert = 0;
    int64_t slot = -1;  // cache slot, -1 while none
    bool stream = false;
    bool hit = false;
    bool done = false;  // computed and released
  };
  struct Hold {
    int64_t layer = 0;
    int64_t slot = 0;
  };

  ExpertKey key(int64_t layer, int32_t e) const { return {static_cast<int32_t>(layer), e}; }
  Entry& entry(int32_t e);
  void start_read(int64_t slot, ExpertKey k, bool prefetch);
  void finish_read(int64_t slot);
  void adopt(SlotInfo& s, uint8_t* base, ExpertKey k);
  void start_pending();
  void start_staging(ExpertKey k);
  void reap();
  int64_t reserve_or_make_room(ExpertKey k);
  void release_holds(int64_t up_to_layer);
  void issue_prefetches();
  // Admission (OffloadOptions::prefetch_admission): may a prefetch read start now, and may it
  // take a slot for k?
  bool drive_idle() const;
  bool admits(ExpertKey k) const;
  bool stream_this_miss(ExpertKey k) const;

  const ExpertLayout& layout_;
  const ModelConfig& c_;
  const ModelWeights& w_;
  Backend& b_;
  OffloadOptions o_;
  int64_t max_prefetch_slots_;

  SlotPool pool_;
  ExpertCache cache_;
  std::unique_ptr<SlotInfo[]> slots_;
  SlotPool staging_pool_;
  SlotInfo staging_;
  int32_t staging_expert_ = -1;  // the expert whose read the staging slot holds, -1 when free
  bool staging_reading_ = false;
  std::unique_ptr<ExpertReader> reader_;  // after the pools: destroyed first, so no read outlives its slot

  Prefetcher prefetcher_;
  std::vector<Hold> holds_;
  std::vector<int64_t> loading_;  // cache slots with a read in flight
  int64_t layer_ = -1;            // the MoE layer being computed
  std::vector<Entry> entries_;

  // A hint (hint()) opened the coming step's predictions: begin_step keeps them, and the reads
  // it started.
  bool hinted_ = false;
  uint64_t hint_reads_ = 0, bytes_at_hint_ = 0;
  SpeculativeRouter speculator_;  // the next layers' routers for prefetch

  OffloadStats stats_;
  OffloadStepStats step_;
  uint64_t bytes_at_step_ = 0, evictions_at_step_ = 0;
  uint64_t steps_ = 0;  // begin_step calls
  double step_t0_ = 0;
};

}  // namespace moe
