#include "runtime/offload/offloaded_experts.h"

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

OffloadedExperts::OffloadedExperts(const ExpertLayout& layout, const ModelConfig& config, const ModelWeights& weights,
                                   Backend& backend, int64_t max_step_tokens, int64_t slots,
                                   const OffloadOptions& options)
    : layout_(layout),
      c_(config),
      w_(weights),
      b_(backend),
      o_(options),
      max_prefetch_slots_(options.max_prefetch_slots >= 0 ? options.max_prefetch_slots
                                                          : std::max<int64_t>(1, slots / 2)),
      pool_(slots, layout.largest_bytes()),
      cache_(slots, make_cache_policy(options.cache_policy)),
      slots_(std::make_unique<SlotInfo[]>(static_cast<size_t>(slots))),
      staging_pool_(kStagingSlots, layout.largest_bytes()),
      reader_(open_expert_reader(layout.file(), options.reader, options.pread_threads)),
      prefetcher_(layout.first_layer(), layout.end_layer() - layout.first_layer(), config.num_experts),
      speculator_(config, weights, backend, max_step_tokens, options.prefetch_depth) {
  MOE_CHECK(slots >= 1, "expert offloading needs at least one expert slot in RAM, got ", slots);
  MOE_CHECK(o_.prefetch_depth >= 0, "--prefetch-depth must be 0 or more, got ", o_.prefetch_depth);
  MOE_CHECK(!w_.layers.empty() && w_.layers.front().index == layout.first_layer(),
            "OffloadedExperts: the expert layout and the bound weights cover different layers");
  entries_.reserve(static_cast<size_t>(c_.num_experts));
  holds_.reserve(static_cast<size_t>(slots));
  loading_.reserve(static_cast<size_t>(slots));
  stats_.reserve(4096);
}

OffloadedExperts::~OffloadedExperts() {
  // No read may land in memory that is gone: wait for every one still in flight.
  for (int64_t slot : loading_) {
    if (cache_.state(slot) != SlotState::kLoading) continue;
    try {
      slots_[static_cast<size_t>(slot)].done.wait();
    } catch (const Error&) {
    }
  }
  if (staging_expert_ >= 0) {
    try {
      staging_.done.wait();
    } catch (const Error&) {
    }
  }
}

std::string OffloadedExperts::describe() const {
  return str_cat(cache_.capacity(), " RAM expert slots x ", format_bytes(pool_.slot_bytes()), " + ", kStagingSlots,
                 " staging (", cache_.policy().name(), (o_.cache ? "" : ", cache off"), "), miss policy ",
                 miss_policy_name(o_.miss_policy), ", prefetch depth ", o_.prefetch_depth,
                 o_.lookahead ? "" : ", no in-layer lookahead", "; reads: ", reader_->describe());
}

OffloadedExperts::Entry& OffloadedExperts::entry(int32_t e) {
  for (Entry& en : entries_)
    if (en.expert == e) return en;
  fail("expert offloading: expert ", layer_, ".", e, " was not routed in this layer");
}

void OffloadedExperts::adopt(SlotInfo& s, uint8_t* base, ExpertKey k) {
  const double t0 = now_seconds();
  const ExpertExtentInfo& info = layout_.at(k);
  s.weights = MlpWeights{.gate = b_.adopt_weight_in_place(info.gate.view(base)),
                         .up = b_.adopt_weight_in_place(info.up.view(base)),
                         .down = b_.adopt_weight_in_place(info.down.view(base))};
  s.adopted = true;
  step_.adopt_seconds += now_seconds() - t0;
}

void OffloadedExperts::start_read(int64_t slot, ExpertKey k, bool prefetch) {
  const ExpertExtentInfo& info = layout_.at(k);
  SlotInfo& s = slots_[static_cast<size_t>(slot)];
  s.adopted = false;
  s.from_prefetch = prefetch;
  reader_->submit(ReadRequest{.key = k,
                              .offset = info.offset,
                              .bytes = info.bytes,
                              .dst = pool_.data(slot),
                              .done = &s.done,
                              .background = prefetch && o_.prefetch_admission});
  loading_.push_back(slot);
  if (prefetch) ++step_.prefetch_reads;
}

void OffloadedExperts::finish_read(int64_t slot) {
  SlotInfo& s = slots_[static_cast<size_t>(slot)];
  if (cache_.state(slot) == SlotState::kLoading) {
    try {
      step_.wait_seconds += s.done.wait();
    } catch (const Error&) {
      s.held = false;
      cache_.erase(slot);
      throw;
    }
    cache_.mark_ready(slot);
  }
  if (!s.adopted) adopt(s, pool_.data(slot), cache_.key(slot));
}

void OffloadedExperts::reap() {
  for (int64_t slot : loading_)
    if (cache_.state(slot) == SlotState::kLoading && slots_[static_cast<size_t>(slot)].done.done()) finish_read(slot);
  std::erase_if(loading_, [&](int64_t slot) { return cache_.state(slot) != SlotState::kLoading; });
}

void OffloadedExperts::start_staging(ExpertKey k) {
  const ExpertExtentInfo& info = layout_.at(k);
  staging_.adopted = false;
  staging_expert_ = k.expert;
  reader_->submit(ReadRequest{
      .key = k, .offset = info.offset, .bytes = info.bytes, .dst = staging_pool_.data(0), .done = &staging_.done});
}

bool OffloadedExperts::stream_this_miss(ExpertKey k) const {
  switch (o_.miss_policy) {
    case MissPolicy::kFetch: return false;
    case MissPolicy::kCpu: return true;
    case MissPolicy::kAuto: {
      if (cache_.has_free_slot()) return false;
      const std::optional<int64_t> victim = cache_.victim();
      return !victim || !(cache_.candidate_score(k) > cache_.score(*victim));
    }
  }
  return false;
}

void OffloadedExperts::begin_step(int64_t n_tokens) {
  ++steps_;
  if (!hinted_) prefetcher_.begin_step();
  step_ = OffloadStepStats{};
  step_.tokens = n_tokens;
  bytes_at_step_ = hinted_ ? bytes_at_hint_ : reader_->bytes_read();
  step_.prefetch_reads = hinted_ ? hint_reads_ : 0;
  hinted_ = false;
  evictions_at_step_ = cache_.evictions();
  step_t0_ = now_seconds();
}

void OffloadedExperts::begin_layer(int64_t layer, std::span<const int32_t> experts) {
  layer_ = layer;
  entries_.clear();
  reap();
  step_.prefetch += prefetcher_.observe(layer, experts);
  for (int32_t e : experts) {
    const ExpertKey k = key(layer, e);
    Entry en{.expert = e, .slot = cache_.find(k), .stream = false, .hit = false, .done = false};
    ++step_.used;
    step_.bytes_ram += layout_.at(k).bytes;
    if (en.slot >= 0) {
      en.hit = true;
      ++step_.hits;
      cache_.pin(en.slot);
      SlotInfo& s = slots_[static_cast<size_t>(en.slot)];
      if (s.from_prefetch) {
        ++step_.prefetch_hits;
        s.from_prefetch = false;
      }
    } else {
      ++step_.misses;
      en.stream = stream_this_miss(k);
    }
    entries_.push_back(en);
  }
  // The experts used here are pinned by their entries; holds for this layer are done.
  release_holds(layer);
  if (o_.lookahead) start_pending();
  if (o_.prefetch_admission && o_.prefetch_depth > 0) issue_prefetches();
}

void OffloadedExperts::start_pending() {
  bool fetches_blocked = false;
  for (Entry& en : entries_) {
    if (en.done) continue;
    const ExpertKey k = key(layer_, en.expert);
    if (en.stream) {
      if (staging_expert_ < 0) start_staging(k);
    } else if (en.slot < 0 && !fetches_blocked) {
      en.slot = cache_.reserve(k);  // never waits: only ready, unpinned experts are evicted
      if (en.slot < 0) {
        fetches_blocked = true;  // keep the order: later misses wait for a slot too
        continue;
      }
      start_read(en.slot, k, false);
    }
  }
}

int64_t OffloadedExperts::reserve_or_make_room(ExpertKey k) {
  reap();
  int64_t slot = cache_.reserve(k);
  if (slot >= 0) return slot;
  // Every slot is pinned or loading: prefetch holds give way to the expert needed now.
  release_holds(kAllLayers);
  for (int64_t s : std::vector<int64_t>(loading_))
    if (cache_.pins(s) == 0) finish_read(s);
  reap();
  return cache_.reserve(k);
}

MlpWeights OffloadedExperts::acquire(int64_t layer, int32_t e) {
  MOE_CHECK(layer == layer_, "expert offloading: acquire of layer ", layer, " inside layer ", layer_);
  Entry& en = entry(e);
  const ExpertKey k = key(layer, e);
  if (!en.stream && en.slot < 0) {
    en.slot = reserve_or_make_room(k);
    if (en.slot >= 0) {
      start_read(en.slot, k, false);
    } else {
      en.stream = true;  // every slot holds an expert of this layer: stream this one
    }
  }
  if (en.stream) {
    if (staging_expert_ != e) {
      if (staging_expert_ >= 0) staging_.done.wait();  // a later expert's read: finish, drop
      start_staging(k);
    }
    step_.wait_seconds += staging_.done.wait();
    if (!staging_.adopted) adopt(staging_, staging_pool_.data(0), k);
    ++step_.streamed;
    return staging_.weights;
  }
  finish_read(en.slot);
  if (en.hit) cache_.touch(en.slot);
  SlotInfo& s = slots_[static_cast<size_t>(en.slot)];
  s.used_step = steps_;
  if (o_.prefetch_admission && o_.prefetch_depth > 0) issue_prefetches();  // its read is done: pump
  return s.weights;
}

void OffloadedExperts::release(int64_t layer, int32_t e) {
  MOE_CHECK(layer == layer_, "expert offloading: release of layer ", layer, " inside layer ", layer_);
  Entry& en = entry(e);
  en.done = true;
  if (en.stream) {
    staging_expert_ = -1;
  } else {
    cache_.unpin(en.slot);
    if (!o_.cache && cache_.pins(en.slot) == 0 && !cache_.is_static(en.slot)) cache_.erase(en.slot);
  }
  if (o_.lookahead) start_pending();
  if (o_.prefetch_admission && o_.prefetch_depth > 0) issue_prefetches();
}

void OffloadedExperts::release_holds(int64_t up_to_layer) {
  std::erase_if(holds_, [&](const Hold& h) {
    if (h.layer > up_to_layer) return false;
    slots_[static_cast<size_t>(h.slot)].held = false;
    cache_.unpin(h.slot);
    if (!o_.cache && cache_.pins(h.slot) == 0 && cache_.state(h.slot) == SlotState::kReady && !cache_.is_static(h.slot))
      cache_.erase(h.slot);
    return true;
  });
}

bool OffloadedExperts::drive_idle() const {
  if (staging_expert_ >= 0 && !staging_.done.done()) return false;
  for (int64_t slot : loading_)
    if (cache_.state(slot) == SlotState::kLoading && !slots_[static_cast<size_t>(slot)].done.done()) return false;
  return true;
}

bool OffloadedExperts::admits(ExpertKey k) const {
  if (cache_.has_free_slot()) return true;
  const std::optional<int64_t> v = cache_.victim();
  if (!v) return false;
  return slots_[static_cast<size_t>(*v)].used_step != steps_ && cache_.score(*v) < cache_.candidate_score(k);
}

void OffloadedExperts::issue_prefetches() {
  reap();
  while (const std::optional<Prediction> p = prefetcher_.peek()) {
    int64_t slot = cache_.find(p->key);
    if (slot < 0) {
      if (static_cast<int64_t>(holds_.size()) >= max_prefetch_slots_) break;
      if (o_.prefetch_admission) {
        if (!drive_idle()) break;  // pumped again when it is (acquire, release, begin_layer)
        if (!admits(p->key)) {
          prefetcher_.pop();  // not worth its victim: drop it
          ++step_.prefetch_refused;
          continue;
        }
      }
      slot = cache_.reserve(p->key);  // pinned once: that pin is the hold
      if (slot < 0) break;
      start_read(slot, p->key, true);
    } else if (slots_[static_cast<size_t>(slot)].held) {
      prefetcher_.pop();
      continue;
    } else {
      cache_.pin(slot);  // already here: keep it until its layer has run
    }
    slots_[static_cast<size_t>(slot)].held = true;
    holds_.push_back({p->key.layer, slot});
    prefetcher_.pop();
  }
}

void OffloadedExperts::end_layer(int64_t layer, const Tensor& hidden) {
  if (o_.prefetch_depth == 0) return;
  const double t0 = now_seconds();
  speculator_.predict(layer, hidden, prefetcher_);
  issue_prefetches();
  step_.speculate_seconds += now_seconds() - t0;
}

void OffloadedExperts::hint(int64_t after_layer, const Tensor& hidden) {
  if (o_.prefetch_depth == 0) return;
  if (!hinted_) {
    prefetcher_.begin_step();
    bytes_at_hint_ = reader_->bytes_read();
    hint_reads_ = 0;
  }
  hinted_ = true;
  const uint64_t reads = step_.prefetch_reads;
  speculator_.predict(after_layer, hidden, prefetcher_);
  issue_prefetches();
  hint_reads_ += step_.prefetch_reads - reads;
}

void OffloadedExperts::end_step() {
  release_holds(kAllLayers);
  layer_ = -1;
  step_.bytes_nvme = reader_->bytes_read() - bytes_at_step_;
  step_.evictions = cache_.evictions() - evictions_at_step_;
  step_.seconds = now_seconds() - step_t0_;
  stats_.add(step_);
}

int64_t OffloadedExperts::place_static(std::span<const ExpertKey> keys, int64_t max_slots) {
  std::vector<int64_t> placed;
  for (const ExpertKey& k : keys) {
    if (static_cast<int64_t>(placed.size()) >= max_slots) break;
    if (!layout_.contains(k) || cache_.find(k) >= 0) continue;
    const int64_t slot = cache_.reserve(k);
    if (slot < 0) break;
    start_read(slot, k, false);
    placed.push_back(slot);
  }
  for (int64_t slot : placed) {
    finish_read(slot);
    cache_.set_static(slot);
    cache_.unpin(slot);
  }
  reap();
  return static_cast<int64_t>(placed.size());
}

}  // namespace moe
