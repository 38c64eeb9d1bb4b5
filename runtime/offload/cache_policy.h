// Replacement policies for the expert cache. A policy only ranks experts; the cache
// (expert_cache.h) owns the slots and decides which experts may be evicted at all (never one that
// is pinned: in flight, being computed, held for a prefetch, or statically placed). The same
// policies serve the CPU RAM tier and, later, the GPU's VRAM slots.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "runtime/offload/expert_key.h"

namespace moe {

class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  virtual std::string name() const = 0;
  // `now` is a logical clock the cache advances once per access (monotonic).
  virtual void on_insert(ExpertKey k, uint64_t now) = 0;
  virtual void on_access(ExpertKey k, uint64_t now) = 0;
  virtual void on_erase(ExpertKey k) = 0;
  // Eviction priority of a cached expert: the cache evicts the lowest (ties: the lower key).
  virtual double keep_score(ExpertKey k, uint64_t now) const = 0;
  // What keep_score would be for an expert that is not cached, were it accessed now (for
  // admission decisions: is the newcomer worth more than the victim?).
  virtual double candidate_score(ExpertKey k, uint64_t now) const = 0;
};

// Least recently used: score = time of the last access.
class LruPolicy final : public CachePolicy {
 public:
  std::string name() const override { return "lru"; }
  void on_insert(ExpertKey k, uint64_t now) override { last_[k] = now; }
  void on_access(ExpertKey k, uint64_t now) override { last_[k] = now; }
  void on_erase(ExpertKey k) override { last_.erase(k); }
  double keep_score(ExpertKey k, uint64_t now) const override;
  double candidate_score(ExpertKey, uint64_t now) const override { return static_cast<double>(now); }

 private:
  std::unordered_map<ExpertKey, uint64_t, ExpertKeyHash> last_;
};

// Least frequently used with exponential decay: every expert (cached or not) carries a count
// that halves every `half_life` accesses and gains 1 per access, so old popularity fades. Counts
// of uncached experts are kept (bounded by layers x experts) so a returning expert is recognised.
class LfuDecayPolicy final : public CachePolicy {
 public:
  explicit LfuDecayPolicy(double half_life = 256);
  std::string name() const override { return "lfu"; }
  void on_insert(ExpertKey k, uint64_t now) override { on_access(k, now); }
  void on_access(ExpertKey k, uint64_t now) override;
  void on_erase(ExpertKey) override {}  // the count survives eviction
  double keep_score(ExpertKey k, uint64_t now) const override;
  double candidate_score(ExpertKey k, uint64_t now) const override;

 private:
  struct Count {
    double value = 0;
    uint64_t at = 0;
  };
  double decayed(const Count& c, uint64_t now) const;
  double half_life_;
  std::unordered_map<ExpertKey, Count, ExpertKeyHash> counts_;
};

// "lru" or "lfu"; throws moe::Error listing the names for anything else.
std::unique_ptr<CachePolicy> make_cache_policy(const std::string& name);

}  // namespace moe
