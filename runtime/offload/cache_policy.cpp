#include "runtime/offload/cache_policy.h"

#include <cmath>

#include "runtime/core/error.h"

namespace moe {

double LruPolicy::keep_score(ExpertKey k, uint64_t) const {
  const auto it = last_.find(k);
  return it == last_.end() ? 0.0 : static_cast<double>(it->second);
}

LfuDecayPolicy::LfuDecayPolicy(double half_life) : half_life_(half_life) {
  MOE_CHECK(half_life > 0, "lfu cache policy: half-life must be positive, got ", half_life);
}

double LfuDecayPolicy::decayed(const Count& c, uint64_t now) const {
  const double age = static_cast<double>(now >= c.at ? now - c.at : 0);
  return c.value * std::exp2(-age / half_life_);
}

void LfuDecayPolicy::on_access(ExpertKey k, uint64_t now) {
  Count& c = counts_[k];
  c.value = decayed(c, now) + 1.0;
  c.at = now;
}

double LfuDecayPolicy::keep_score(ExpertKey k, uint64_t now) const {
  const auto it = counts_.find(k);
  return it == counts_.end() ? 0.0 : decayed(it->second, now);
}

double LfuDecayPolicy::candidate_score(ExpertKey k, uint64_t now) const {
  return keep_score(k, now) + 1.0;
}

std::unique_ptr<CachePolicy> make_cache_policy(const std::string& name) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  if (name == "lfu") return std::make_unique<LfuDecayPolicy>();
  fail("--cache-policy must be lru or lfu (LFU with decay), got '", name, "'");
}

}  // namespace moe
