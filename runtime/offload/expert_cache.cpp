#include "runtime/offload/expert_cache.h"

#include <utility>

#include "runtime/core/error.h"

namespace moe {

ExpertCache::ExpertCache(int64_t slots, std::unique_ptr<CachePolicy> policy)
    : slots_(static_cast<size_t>(slots)), policy_(std::move(policy)) {
  MOE_CHECK(slots >= 0, "ExpertCache: negative slot count ", slots);
  MOE_CHECK(policy_ != nullptr, "ExpertCache: no policy");
  for (int64_t i = slots - 1; i >= 0; --i) free_.push_back(i);
}

const ExpertCache::Slot& ExpertCache::at(int64_t slot) const {
  MOE_CHECK(slot >= 0 && slot < capacity(), "ExpertCache: slot ", slot, " outside [0, ", capacity(), ")");
  return slots_[static_cast<size_t>(slot)];
}

ExpertCache::Slot& ExpertCache::at(int64_t slot) {
  return const_cast<Slot&>(std::as_const(*this).at(slot));
}

int64_t ExpertCache::find(ExpertKey k) const {
  const auto it = where_.find(k);
  return it == where_.end() ? -1 : it->second;
}

void ExpertCache::touch(int64_t slot) {
  Slot& s = at(slot);
  MOE_CHECK(s.state != SlotState::kFree, "ExpertCache: touch of free slot ", slot);
  policy_->on_access(s.key, ++now_);
}

std::optional<int64_t> ExpertCache::victim() const {
  if (!free_.empty()) return std::nullopt;
  std::optional<int64_t> best;
  double best_score = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.state != SlotState::kReady || s.pins > 0 || s.is_static) continue;
    const double score = policy_->keep_score(s.key, now_);
    if (!best || score < best_score || (score == best_score && s.key < slots_[static_cast<size_t>(*best)].key)) {
      best = static_cast<int64_t>(i);
      best_score = score;
    }
  }
  return best;
}

int64_t ExpertCache::reserve(ExpertKey k, std::optional<ExpertKey>* evicted) {
  MOE_CHECK(find(k) < 0, "ExpertCache: expert ", k.layer, ".", k.expert, " is already cached");
  if (evicted) evicted->reset();
  int64_t slot = -1;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    const std::optional<int64_t> v = victim();
    if (!v) return -1;
    slot = *v;
    Slot& s = at(slot);
    if (evicted) *evicted = s.key;
    policy_->on_erase(s.key);
    where_.erase(s.key);
    ++evictions_;
  }
  Slot& s = at(slot);
  s = Slot{.key = k, .state = SlotState::kLoading, .pins = 1, .is_static = false};
  where_[k] = slot;
  policy_->on_insert(k, ++now_);
  return slot;
}

void ExpertCache::mark_ready(int64_t slot) {
  Slot& s = at(slot);
  MOE_CHECK(s.state == SlotState::kLoading, "ExpertCache: slot ", slot, " finished a load it was not waiting for");
  s.state = SlotState::kReady;
}

void ExpertCache::erase(int64_t slot) {
  Slot& s = at(slot);
  if (s.state == SlotState::kFree) return;
  policy_->on_erase(s.key);
  where_.erase(s.key);
  s = Slot{};
  free_.push_back(slot);
}

void ExpertCache::pin(int64_t slot) {
  Slot& s = at(slot);
  MOE_CHECK(s.state != SlotState::kFree, "ExpertCache: pin of free slot ", slot);
  ++s.pins;
}

void ExpertCache::unpin(int64_t slot) {
  Slot& s = at(slot);
  MOE_CHECK(s.pins > 0, "ExpertCache: unpin of unpinned slot ", slot, " (expert ", s.key.layer, ".", s.key.expert, ")");
  --s.pins;
}

void ExpertCache::set_static(int64_t slot) {
  Slot& s = at(slot);
  MOE_CHECK(s.state != SlotState::kFree, "ExpertCache: set_static of free slot ", slot);
  s.is_static = true;
}

}  // namespace moe
