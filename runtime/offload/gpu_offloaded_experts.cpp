#include "runtime/offload/gpu_offloaded_experts.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "runtime/core/error.h"
#include "runtime/offload/budget.h"

namespace moe {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int64_t kAllLayers = std::numeric_limits<int64_t>::max();

}  // namespace

GpuOffloadedExperts::GpuOffloadedExperts(const ExpertLayout& layout, const ModelConfig& config,
                                         const ModelWeights& weights, Backend& device,
                                         std::unique_ptr<DeviceExpertSlots> slots, int64_t max_step_tokens,
                                         int64_t vram_slots, int64_t host_slots, const OffloadOptions& options)
    : layout_(layout),
      c_(config),
      w_(weights),
      b_(device),
      o_(options),
      vram_slots_(vram_slots),
      host_slots_(host_slots),
      max_prefetch_slots_(options.max_prefetch_slots >= 0 ? options.max_prefetch_slots
                                                          : std::max<int64_t>(1, vram_slots / 2)),
      hpool_(host_slots, layout.largest_bytes()),
      hcache_(host_slots, make_cache_policy(options.cache_policy)),
      hslots_(std::make_unique<HSlot[]>(static_cast<size_t>(host_slots))),
      dev_(std::move(slots)),
      vcache_(vram_slots, make_cache_policy(options.cache_policy)),
      vslots_(static_cast<size_t>(vram_slots + kDeviceStagingSlots)),
      reader_(open_expert_reader(layout.file(), options.reader, options.pread_threads)),
      runner_(options.host_threads, config.hidden_size, max_step_tokens),
      prefetcher_(layout.first_layer(), layout.end_layer() - layout.first_layer(), config.num_experts),
      speculator_(config, weights, device, max_step_tokens, options.prefetch_depth) {
  MOE_CHECK(dev_ != nullptr, "GPU expert offloading: the backend has no VRAM expert slots");
  MOE_CHECK(vram_slots >= 1 && host_slots >= 1, "GPU expert offloading needs at least one VRAM and one RAM slot, got ",
            vram_slots, " and ", host_slots);
  MOE_CHECK(dev_->slots() >= vram_slots + kDeviceStagingSlots && dev_->slot_bytes() >= layout.largest_bytes(),
            "GPU expert offloading: ", dev_->slots(), " device slots of ", dev_->slot_bytes(), " bytes for ",
            vram_slots, " + ", kDeviceStagingSlots, " slots of ", layout.largest_bytes());
  MOE_CHECK(o_.prefetch_depth >= 0, "--prefetch-depth must be 0 or more, got ", o_.prefetch_depth);
  MOE_CHECK(!w_.layers.empty() && w_.layers.front().index == layout.first_layer(),
            "GpuOffloadedExperts: the expert layout and the bound weights cover different layers");
  dev_->register_host(hpool_.data(0), hpool_.bytes());
  const int64_t m = max_step_tokens, h = c_.hidden_size;
  host_x_.resize(static_cast<size_t>(m * h));
  host_out_.resize(static_cast<size_t>(m * c_.experts_per_token * h));
  entries_.reserve(static_cast<size_t>(c_.num_experts));
  holds_.reserve(static_cast<size_t>(vram_slots));
  pins_.reserve(static_cast<size_t>(host_slots) * 2);
  stats_.reserve(4096);
  stats_.set_vram_tier(true);
}

GpuOffloadedExperts::~GpuOffloadedExperts() {
  // No read may land in, and no copy or CPU job may read, memory that is about to go.
  for (int64_t s : host_loading_) {
    try {
      hslots_[static_cast<size_t>(s)].done.wait();
    } catch (const Error&) {
    }
  }
  try {
    for (const Pin& p : pins_) {
      if (p.ticket) dev_->host_wait(p.ticket);
      if (p.job) runner_.wait(p.job);
    }
  } catch (const std::exception&) {
  }
}

std::string GpuOffloadedExperts::describe() const {
  return str_cat(dev_->describe(), " (", vcache_.capacity(), " cached + ", kDeviceStagingSlots, " staging, ",
                 vcache_.policy().name(), (o_.cache ? "" : ", cache off"), "); ", hcache_.capacity(), " RAM slots x ",
                 format_bytes(hpool_.slot_bytes()), "; miss policy ", miss_policy_name(o_.miss_policy),
                 ", prefetch depth ", o_.prefetch_depth, o_.lookahead ? "" : ", no in-layer lookahead", "; ",
                 runner_.describe(), "; reads: ", reader_->describe());
}

GpuOffloadedExperts::Entry& GpuOffloadedExperts::entry(int32_t e) {
  for (Entry& en : entries_)
    if (en.expert == e) return en;
  fail("GPU expert offloading: expert ", layer_, ".", e, " was not routed in this layer");
}

MlpWeights GpuOffloadedExperts::host_views(int64_t hslot, ExpertKey k) const {
  const ExpertExtentInfo& info = layout_.at(k);
  uint8_t* base = hpool_.data(hslot);
  return MlpWeights{.gate = info.gate.view(base), .up = info.up.view(base), .down = info.down.view(base)};
}

// ---- host tier ----------------------------------------------------------------------------------

void GpuOffloadedExperts::start_host_read(int64_t hslot, ExpertKey k) {
  const ExpertExtentInfo& info = layout_.at(k);
  reader_->submit(ReadRequest{.key = k,
                              .offset = info.offset,
                              .bytes = info.bytes,
                              .dst = hpool_.data(hslot),
                              .done = &hslots_[static_cast<size_t>(hslot)].done});
  host_loading_.push_back(hslot);
}

// The read into `hslot` is complete (waits when it is not): the slot is ready, the copies waiting
// for it are queued, and the read's pin is dropped.
void GpuOffloadedExperts::finish_host_read(int64_t hslot) {
  if (hcache_.state(hslot) != SlotState::kLoading) return;
  try {
    step_.wait_seconds += hslots_[static_cast<size_t>(hslot)].done.wait();
  } catch (const Error&) {
    for (int64_t v : vram_waiting_)
      if (vslots_[static_cast<size_t>(v)].wait_host == hslot) {
        vslots_[static_cast<size_t>(v)].wait_host = -1;
        if (v < vram_slots_ && vcache_.state(v) == SlotState::kLoading) vcache_.erase(v);
      }
    std::erase_if(vram_waiting_, [&](int64_t v) { return vslots_[static_cast<size_t>(v)].wait_host < 0; });
    hcache_.erase(hslot);
    throw;
  }
  hcache_.mark_ready(hslot);
  for (int64_t v : vram_waiting_)
    if (vslots_[static_cast<size_t>(v)].wait_host == hslot) issue_copy(v, hslot);
  std::erase_if(vram_waiting_, [&](int64_t v) { return vslots_[static_cast<size_t>(v)].wait_host < 0; });
  hcache_.unpin(hslot);
}

// A RAM slot for k, reserved (loading, pinned once by the read to come). When every slot is
// pinned, waits for whatever pins the oldest: a copy, a drive read or a CPU job.
int64_t GpuOffloadedExperts::obtain_host_slot(ExpertKey k) {
  for (;;) {
    reap();
    const int64_t s = hcache_.reserve(k);
    if (s >= 0) return s;
    const double t0 = now_seconds();
    if (!pins_.empty()) {
      const Pin p = pins_.front();
      if (p.ticket) dev_->host_wait(p.ticket);
      if (p.job) runner_.wait(p.job);
    } else if (!host_loading_.empty()) {
      finish_host_read(host_loading_.front());
    } else {
      fail("GPU expert offloading: every one of the ", host_slots_,
           " RAM expert slots is pinned; give more --host-mem");
    }
    step_.wait_seconds += now_seconds() - t0;
  }
}

// The host slot holding (or reading) k; starts the drive read when k is not in RAM.
int64_t GpuOffloadedExperts::ensure_on_host(ExpertKey k) {
  int64_t s = hcache_.find(k);
  if (s >= 0) {
    if (hcache_.state(s) == SlotState::kReady) ++step_.host_hits;
    hcache_.touch(s);
    return s;
  }
  s = obtain_host_slot(k);
  start_host_read(s, k);
  return s;
}

// ---- VRAM tier ----------------------------------------------------------------------------------

void GpuOffloadedExperts::issue_copy(int64_t vslot, int64_t hslot) {
  VSlot& v = vslots_[static_cast<size_t>(vslot)];
  const ExpertKey k = vslot < vram_slots_ ? vcache_.key(vslot) : v.key;
  v.weights = dev_->copy_in(vslot, hpool_.data(hslot), host_views(hslot, k), &v.ticket);
  v.wait_host = -1;
  hcache_.pin(hslot);
  pins_.push_back(Pin{.hslot = hslot, .ticket = v.ticket, .job = 0});
  if (vslot < vram_slots_ && vcache_.state(vslot) == SlotState::kLoading) vcache_.mark_ready(vslot);
  ++step_.copies;
  step_.bytes_h2d += layout_.at(k).bytes;
  step_.bytes_ram += layout_.at(k).bytes;
}

// Queues the copy of k into `vslot` now when k is ready in RAM, else once its drive read is done.
void GpuOffloadedExperts::begin_copy(int64_t vslot, ExpertKey k) {
  VSlot& v = vslots_[static_cast<size_t>(vslot)];
  v.key = k;
  v.ticket = 0;
  const int64_t h = ensure_on_host(k);
  if (hcache_.state(h) == SlotState::kReady) {
    issue_copy(vslot, h);
  } else {
    v.wait_host = h;
    vram_waiting_.push_back(vslot);
  }
}

void GpuOffloadedExperts::reap() {
  for (int64_t s : std::vector<int64_t>(host_loading_))
    if (hcache_.state(s) == SlotState::kLoading && hslots_[static_cast<size_t>(s)].done.done()) finish_host_read(s);
  std::erase_if(host_loading_, [&](int64_t s) { return hcache_.state(s) != SlotState::kLoading; });
  std::erase_if(pins_, [&](const Pin& p) {
    const bool over = p.ticket ? dev_->finished(p.ticket) : runner_.done(p.job);
    if (over) hcache_.unpin(p.hslot);
    return over;
  });
}

int64_t GpuOffloadedExperts::reserve_vram(ExpertKey k) {
  reap();
  int64_t slot = vcache_.reserve(k);  // never waits: only ready, unpinned experts are evicted
  if (slot >= 0) return slot;
  release_holds(kAllLayers);  // prefetch holds give way to the expert needed now
  return vcache_.reserve(k);
}

bool GpuOffloadedExperts::compute_on_host(ExpertKey k, int64_t rows) {
  switch (o_.miss_policy) {
    case MissPolicy::kFetch: return false;
    case MissPolicy::kCpu: return true;
    case MissPolicy::kAuto: {
      const ExpertExtentInfo& info = layout_.at(k);
      MissCost cost;
      cost.expert_bytes = info.bytes;
      cost.expert_weights = static_cast<uint64_t>(info.gate.shape[0] * info.gate.shape[1] * 3);
      cost.tokens = rows;
      cost.link_bytes_per_s = o_.link_gbs * 1e9;
      cost.copy_queue_s = static_cast<double>(dev_->bytes_in_flight()) / cost.link_bytes_per_s;
      cost.cpu_bytes_per_s = o_.cpu_gbs * 1e9;
      cost.cpu_flops = o_.cpu_gflops * 1e9;
      cost.gpu_expert_s = static_cast<double>(info.bytes) / (o_.device_gbs * 1e9);
      return choose_miss_action(cost) == MissAction::kComputeOnHost;
    }
  }
  return false;
}

// Fetches of this layer's misses, in expert order, as far as VRAM slots allow.
void GpuOffloadedExperts::start_fetches() {
  for (Entry& en : entries_) {
    if (!en.decided || en.on_host || en.vslot >= 0) continue;
    const ExpertKey k = key(layer_, en.expert);
    reap();
    en.vslot = vcache_.reserve(k);
    if (en.vslot < 0) return;  // keep the order: later misses wait for a slot too
    begin_copy(en.vslot, k);
  }
}

// ---- the provider -------------------------------------------------------------------------------

void GpuOffloadedExperts::begin_step(int64_t n_tokens) {
  prefetcher_.begin_step();
  step_ = OffloadStepStats{};
  step_.tokens = n_tokens;
  bytes_at_step_ = reader_->bytes_read();
  evictions_at_step_ = vcache_.evictions();
  step_t0_ = now_seconds();
}

void GpuOffloadedExperts::begin_layer(int64_t layer, std::span<const int32_t> experts) {
  layer_ = layer;
  entries_.clear();
  reap();
  step_.prefetch += prefetcher_.observe(layer, experts);
  for (int32_t e : experts) {
    const ExpertKey k = key(layer, e);
    Entry en{.expert = e, .vslot = vcache_.find(k)};
    ++step_.used;
    if (en.vslot >= 0) {
      en.hit = true;
      en.decided = true;
      ++step_.hits;
      vcache_.pin(en.vslot);
      VSlot& v = vslots_[static_cast<size_t>(en.vslot)];
      if (v.from_prefetch) {
        ++step_.prefetch_hits;
        v.from_prefetch = false;
      }
    } else {
      ++step_.misses;
    }
    entries_.push_back(en);
  }
  release_holds(layer);  // the experts used here are pinned by their entries
}

void GpuOffloadedExperts::layer_input(int64_t layer, const Tensor& xn, std::span<const std::vector<int32_t>> rows) {
  MOE_CHECK(layer == layer_, "GPU expert offloading: layer_input of layer ", layer, " inside layer ", layer_);
  bool any_host = false;
  for (Entry& en : entries_) {
    en.rows = static_cast<int64_t>(rows[static_cast<size_t>(en.expert)].size());
    if (en.hit) continue;
    en.decided = true;
    en.on_host = compute_on_host(key(layer, en.expert), en.rows);
    any_host = any_host || en.on_host;
  }
  if (any_host) {
    // The last layer's CPU experts were all consumed (computed_output), so the buffers are free.
    const int64_t n = xn.dim(0), h = c_.hidden_size;
    b_.copy_to_host(xn, host_x_.data(), static_cast<uint64_t>(n * h) * sizeof(float));
    size_t out = 0;
    for (Entry& en : entries_) {
      if (!en.on_host) continue;
      const ExpertKey k = key(layer, en.expert);
      const int64_t hs = ensure_on_host(k);
      const bool reading = hcache_.state(hs) == SlotState::kLoading;
      en.out = out;
      en.job = runner_.submit(host_x_.data(), rows[static_cast<size_t>(en.expert)], host_views(hs, k),
                              reading ? &hslots_[static_cast<size_t>(hs)].done : nullptr, host_out_.data() + out);
      hcache_.pin(hs);
      pins_.push_back(Pin{.hslot = hs, .ticket = 0, .job = en.job});
      out += static_cast<size_t>(en.rows * h);
      ++step_.host_computed;
      step_.bytes_ram += layout_.at(k).bytes;
    }
  }
  if (o_.lookahead) start_fetches();
}

bool GpuOffloadedExperts::computed_output(int64_t layer, int32_t e, Tensor& y) {
  MOE_CHECK(layer == layer_, "GPU expert offloading: output of layer ", layer, " inside layer ", layer_);
  Entry& en = entry(e);
  if (!en.on_host) return false;
  step_.host_compute_wait_seconds += runner_.wait(en.job);
  b_.copy_from_host(host_out_.data() + en.out, static_cast<uint64_t>(en.rows * c_.hidden_size) * sizeof(float), y);
  reap();
  if (o_.lookahead) start_fetches();
  return true;
}

MlpWeights GpuOffloadedExperts::acquire(int64_t layer, int32_t e) {
  MOE_CHECK(layer == layer_, "GPU expert offloading: acquire of layer ", layer, " inside layer ", layer_);
  Entry& en = entry(e);
  MOE_CHECK(!en.on_host, "GPU expert offloading: expert ", layer, ".", e,
            " is computed on the CPU; the forward pass must take its computed_output");
  const ExpertKey k = key(layer, e);
  en.decided = true;
  if (en.vslot < 0) {
    en.vslot = reserve_vram(k);
    if (en.vslot < 0) en.vslot = staging_slot();  // every VRAM slot holds an expert of this layer
    begin_copy(en.vslot, k);
  }
  VSlot& v = vslots_[static_cast<size_t>(en.vslot)];
  if (v.wait_host >= 0) finish_host_read(v.wait_host);  // the copy needs the drive read first
  if (!dev_->finished(v.ticket)) ++step_.copy_waits;
  dev_->wait(v.ticket);
  if (en.hit) vcache_.touch(en.vslot);
  step_.bytes_vram += layout_.at(k).bytes;
  return v.weights;
}

void GpuOffloadedExperts::release(int64_t layer, int32_t e) {
  MOE_CHECK(layer == layer_, "GPU expert offloading: release of layer ", layer, " inside layer ", layer_);
  Entry& en = entry(e);
  dev_->fence(en.vslot);  // the expert's ops are queued: the next copy into the slot waits for them
  if (en.vslot < vram_slots_) {
    vcache_.unpin(en.vslot);
    if (!o_.cache && vcache_.pins(en.vslot) == 0 && !vcache_.is_static(en.vslot)) vcache_.erase(en.vslot);
  }
  if (o_.lookahead) start_fetches();
}

void GpuOffloadedExperts::release_holds(int64_t up_to_layer) {
  std::erase_if(holds_, [&](const Hold& h) {
    if (h.layer > up_to_layer) return false;
    vslots_[static_cast<size_t>(h.slot)].held = false;
    vcache_.unpin(h.slot);
    if (!o_.cache && vcache_.pins(h.slot) == 0 && vcache_.state(h.slot) == SlotState::kReady &&
        !vcache_.is_static(h.slot))
      vcache_.erase(h.slot);
    return true;
  });
}

void GpuOffloadedExperts::issue_prefetches() {
  reap();
  // Copies by deadline into VRAM slots held until their layer has run.
  while (const std::optional<Prediction> p = prefetcher_.peek()) {
    int64_t slot = vcache_.find(p->key);
    if (slot < 0) {
      if (static_cast<int64_t>(holds_.size()) >= max_prefetch_slots_) break;
      slot = vcache_.reserve(p->key);  // pinned once: that pin is the hold
      if (slot < 0) break;
      begin_copy(slot, p->key);
      vslots_[static_cast<size_t>(slot)].from_prefetch = true;
      ++step_.prefetch_reads;
    } else if (vslots_[static_cast<size_t>(slot)].held) {
      prefetcher_.pop();
      continue;
    } else {
      vcache_.pin(slot);
    }
    vslots_[static_cast<size_t>(slot)].held = true;
    holds_.push_back({p->key.layer, slot});
    prefetcher_.pop();
  }
  // Drive reads ahead of the copies: the remaining predictions into free or evictable RAM slots,
  // with at most half the RAM slots reading at once.
  while (const std::optional<Prediction> p = prefetcher_.peek()) {
    if (static_cast<int64_t>(host_loading_.size()) * 2 >= host_slots_) break;
    if (vcache_.find(p->key) < 0 && hcache_.find(p->key) < 0) {
      const int64_t h = hcache_.reserve(p->key);
      if (h < 0) break;
      start_host_read(h, p->key);
    }
    prefetcher_.pop();
  }
}

void GpuOffloadedExperts::end_layer(int64_t layer, const Tensor& hidden) {
  reap();
  if (o_.prefetch_depth == 0) return;
  const double t0 = now_seconds();
  speculator_.predict(layer, hidden, prefetcher_);
  issue_prefetches();
  step_.speculate_seconds += now_seconds() - t0;
}

void GpuOffloadedExperts::end_step() {
  release_holds(kAllLayers);
  reap();
  layer_ = -1;
  step_.bytes_nvme = reader_->bytes_read() - bytes_at_step_;
  step_.evictions = vcache_.evictions() - evictions_at_step_;
  step_.seconds = now_seconds() - step_t0_;
  stats_.add(step_);
}

int64_t GpuOffloadedExperts::place_static(std::span<const ExpertKey> keys, int64_t max_slots) {
  std::vector<int64_t> placed;
  for (const ExpertKey& k : keys) {
    if (static_cast<int64_t>(placed.size()) >= max_slots) break;
    if (!layout_.contains(k) || vcache_.find(k) >= 0) continue;
    const int64_t slot = vcache_.reserve(k);
    if (slot < 0) break;
    begin_copy(slot, k);
    placed.push_back(slot);
  }
  for (int64_t slot : placed) {
    VSlot& v = vslots_[static_cast<size_t>(slot)];
    if (v.wait_host >= 0) finish_host_read(v.wait_host);
    dev_->wait(v.ticket);
    vcache_.set_static(slot);
    vcache_.unpin(slot);
  }
  reap();
  return static_cast<int64_t>(placed.size());
}

}  // namespace moe
