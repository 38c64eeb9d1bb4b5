// Which expert sits in which fixed-size slot of a tier (the RAM tier on the CPU backend, VRAM
// slots on a GPU), with pinning and a replacement policy. Bookkeeping only: the memory is a
// SlotPool's (slot_pool.h) and loads are issued by whoever owns the cache.
//
// A slot is free, loading (its bytes are in flight) or ready. A pinned slot (pin count > 0: in
// flight, being computed, held for a prefetch) and a static slot (placed before serving from a
// profile) are never evicted, so eviction never waits on a read or a copy: reserve() picks among
// ready, unpinned, dynamic slots only and answers -1 when there is none.
//
// Not thread-safe: owned by the compute thread; I/O threads only fill slot memory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "runtime/offload/cache_policy.h"
#include "runtime/offload/expert_key.h"

namespace moe {

enum class SlotState : uint8_t { kFree, kLoading, kReady };

class ExpertCache {
 public:
  ExpertCache(int64_t slots, std::unique_ptr<CachePolicy> policy);

  int64_t capacity() const { return static_cast<int64_t>(slots_.size()); }
  int64_t used() const { return static_cast<int64_t>(where_.size()); }
  const CachePolicy& policy() const { return *policy_; }

  // The slot holding (or loading) k, or -1.
  int64_t find(ExpertKey k) const;
  SlotState state(int64_t slot) const { return at(slot).state; }
  ExpertKey key(int64_t slot) const { return at(slot).key; }
  int32_t pins(int64_t slot) const { return at(slot).pins; }
  bool is_static(int64_t slot) const { return at(slot).is_static; }

  // Records a use of the cached expert in `slot` for the policy.
  void touch(int64_t slot);
  // The slot reserve() would evict, if it had to evict now: nullopt when a slot is free or
  // nothing is evictable.
  std::optional<int64_t> victim() const;
  bool has_free_slot() const { return used() < capacity(); }
  // A slot for k (which must not be cached): a free one, else the policy's victim. Returns -1
  // when every slot is pinned or static. The slot comes back loading, pinned once, and counts as
  // an access of k. `evicted` receives the key that was dropped, if any.
  int64_t reserve(ExpertKey k, std::optional<ExpertKey>* evicted = nullptr);
  // The load into `slot` finished.
  void mark_ready(int64_t slot);
  // Drops the expert in `slot` (its load failed, or the cache keeps nothing): the slot is free.
  void erase(int64_t slot);
  void pin(int64_t slot);
  void unpin(int64_t slot);
  // Never evicted from now on (static placement).
  void set_static(int64_t slot);

  // The policy's keep score of the expert in `slot`, and the score a newcomer would get now:
  // admission control compares the two (runtime/offload/miss_policy.h).
  double score(int64_t slot) const { return policy_->keep_score(at(slot).key, now_); }
  double candidate_score(ExpertKey k) const { return policy_->candidate_score(k, now_ + 1); }

  uint64_t evictions() const { return evictions_; }

 private:
  struct Slot {
    ExpertKey key{};
    SlotState state = SlotState::kFree;
    int32_t pins = 0;
    bool is_static = false;
  };
  const Slot& at(int64_t slot) const;
  Slot& at(int64_t slot);

  std::vector<Slot> slots_;
  std::vector<int64_t> free_;  // stack of free slot indices
  std::unordered_map<ExpertKey, int64_t, ExpertKeyHash> where_;
  std::unique_ptr<CachePolicy> policy_;
  uint64_t now_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace moe
