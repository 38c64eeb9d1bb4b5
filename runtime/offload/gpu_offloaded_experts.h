// The GPU's expert tiers: a VRAM cache of fixed-size device slots (an ExpertCache over the
// backend's DeviceExpertSlots) on top of a RAM cache of pinned host slots (an ExpertCache over a
// SlotPool, registered with the device) on top of the packed store's experts.bin (the NVMe tier,
// read with O_DIRECT by the ExpertReader). The forward pass sees the ExpertProvider interface:
//   begin_layer     VRAM hits are pinned;
//   layer_input     each VRAM miss is decided (--miss-policy: fetch, cpu, or auto = the cost model
//                   choose_miss_action): fetches get a VRAM slot and a copy from the host slot (after
//                   the drive read when the expert is not in RAM), in expert order, as far as slots
//                   allow (lookahead); CPU misses go to the HostExpertRunner, which computes them
//                   from the host copy while the device works on the others;
//   acquire         makes the compute stream wait for the expert's copy (on the device: the host
//                   waits only for a drive read the copy still needs) and returns the slot's weights;
//   release         fences the slot (the next copy into it waits for the expert's ops);
//   computed_output copies a CPU-computed expert's rows to the device for the scatter-add;
//   end_layer       speculative prefetch: the routers of layers l+1..l+d on the current hidden
//                   state; predictions by deadline get VRAM slots and copies on the copy stream,
//                   and the ones beyond the VRAM holds get drive reads into RAM (reads ahead).
// Eviction never waits: only ready, unpinned slots are evicted, a copy into a slot waits for the
// slot's fence on the device, and a host slot stays pinned while a copy reads it or a drive read
// or CPU expert uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend/device_expert_slots.h"
#include "runtime/offload/host_expert_runner.h"
#include "runtime/offload/offloaded_experts.h"

namespace moe {

class GpuOffloadedExperts final : public ExpertProvider {
 public:
  // One device slot outside the cache, for a fetched miss that finds every VRAM slot pinned.
  static constexpr int64_t kDeviceStagingSlots = 1;

  // `device` computes (a CUDA backend, or a CpuBackend under tests); `slots` must have
  // vram_slots + kDeviceStagingSlots slots of at least layout.largest_bytes(). `host_slots` RAM
  // slots (>= 1). References must outlive this object.
  GpuOffloadedExperts(const ExpertLayout& layout, const ModelConfig& config, const ModelWeights& weights,
                      Backend& device, std::unique_ptr<DeviceExpertSlots> slots, int64_t max_step_tokens,
                      int64_t vram_slots, int64_t host_slots, const OffloadOptions& options);
  ~GpuOffloadedExperts() override;
  GpuOffloadedExperts(const GpuOffloadedExperts&) = delete;
  GpuOffloadedExperts& operator=(const GpuOffloadedExperts&) = delete;

  // Static placement: copies `keys` (most used first) into VRAM before serving and keeps them
  // there, up to `max_slots`. Returns how many were placed.
  int64_t place_static(std::span<const ExpertKey> keys, int64_t max_slots);

  void begin_step(int64_t n_tokens) override;
  void begin_layer(int64_t layer, std::span<const int32_t> experts) override;
  void layer_input(int64_t layer, const Tensor& xn, std::span<const std::vector<int32_t>> rows) override;
  bool computed_output(int64_t layer, int32_t expert, Tensor& y) override;
  MlpWeights acquire(int64_t layer, int32_t expert) override;
  void release(int64_t layer, int32_t expert) override;
  void end_layer(int64_t layer, const Tensor& hidden) override;
  void end_step() override;

  const OffloadStats& stats() const { return stats_; }
  // Off: only the running total of the step stats is kept (a server's steps never end).
  void keep_step_log(bool on) { stats_.set_keep_steps(on); }
  const ExpertCache& vram_cache() const { return vcache_; }
  const ExpertCache& host_cache() const { return hcache_; }
  const ExpertReader& reader() const { return *reader_; }
  const PrefetchCounts& prefetch_totals() const { return prefetcher_.totals(); }
  std::string describe() const;

 private:
  using Ticket = DeviceExpertSlots::Ticket;
  struct Entry {  // one routed expert of the current layer
    int32_t expert = 0;
    int64_t rows = 0;
    int64_t vslot = -1;  // VRAM slot (or the staging slot), -1 while none
    bool hit = false;
    bool decided = false;  // layer_input has planned it
    bool on_host = false;  // computed on the CPU
    int64_t job = 0;       // the runner's job
    size_t out = 0;        // offset of its rows in host_out_
  };
  struct VSlot {
    int64_t wait_host = -1;  // the host slot whose drive read must finish before the copy, or -1
    Ticket ticket = 0;       // the copy into this slot (0: none yet)
    ExpertKey key{};         // for the staging slot
    MlpWeights weights;      // device views, valid for ops after wait(ticket)
    bool from_prefetch = false;
    bool held = false;
  };
  struct HSlot {
    ReadCompletion done;
  };
  struct Pin {  // a host slot pinned until a copy or a CPU job no longer needs it
    int64_t hslot = 0;
    Ticket ticket = 0;  // a copy, or
    int64_t job = 0;    // a CPU job
  };
  struct Hold {
    int64_t layer = 0;
    int64_t slot = 0;
  };

  ExpertKey key(int64_t layer, int32_t e) const { return {static_cast<int32_t>(layer), e}; }
  Entry& entry(int32_t e);
  MlpWeights host_views(int64_t hslot, ExpertKey k) const;
  bool compute_on_host(ExpertKey k, int64_t rows);
  int64_t staging_slot() const { return vram_slots_; }
  // Host tier.
  int64_t obtain_host_slot(ExpertKey k);
  void start_host_read(int64_t hslot, ExpertKey k);
  void finish_host_read(int64_t hslot);
  int64_t ensure_on_host(ExpertKey k);
  // VRAM tier.
  void begin_copy(int64_t vslot, ExpertKey k);
  void issue_copy(int64_t vslot, int64_t hslot);
  void start_fetches();
  int64_t reserve_vram(ExpertKey k);
  void reap();
  void release_holds(int64_t up_to_layer);
  void issue_prefetches();

  const ExpertLayout& layout_;
  const ModelConfig& c_;
  const ModelWeights& w_;
  Backend& b_;
  OffloadOptions o_;
  int64_t vram_slots_, host_slots_;
  int64_t max_prefetch_slots_;

  // Declaration order is destruction order reversed: the runner and the reader stop before the
  // device slots (which unregister the host pool), which go before the host pool's memory.
  SlotPool hpool_;
  ExpertCache hcache_;
  std::unique_ptr<HSlot[]> hslots_;
  std::unique_ptr<DeviceExpertSlots> dev_;
  ExpertCache vcache_;
  std::vector<VSlot> vslots_;  // vram_slots_ cache slots + the staging slot
  std::unique_ptr<ExpertReader> reader_;
  HostExpertRunner runner_;

  Prefetcher prefetcher_;
  std::vector<Hold> holds_;
  std::vector<int64_t> host_loading_;  // host slots with a drive read in flight
  std::vector<int64_t> vram_waiting_;  // VRAM slots whose copy waits for a drive read
  std::vector<Pin> pins_;
  int64_t layer_ = -1;
  std::vector<Entry> entries_;

  // CPU-computed experts: the layer's input on the host and their outputs.
  std::vector<float> host_x_, host_out_;
  SpeculativeRouter speculator_;  // the next layers' routers for prefetch

  OffloadStats stats_;
  OffloadStepStats step_;
  uint64_t bytes_at_step_ = 0, evictions_at_step_ = 0;
  double step_t0_ = 0;
};

}  // namespace moe
