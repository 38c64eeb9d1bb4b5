#include "runtime/offload/prefetcher.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace moe {

Prefetcher::Prefetcher(int64_t first_layer, int64_t num_layers, int64_t num_experts)
    : first_(first_layer),
      layers_(num_layers),
      experts_(num_experts),
      predicted_(static_cast<size_t>(num_layers * num_experts), -1.0),
      predicted_count_(static_cast<size_t>(num_layers), 0) {}

int64_t Prefetcher::slot(ExpertKey k) const {
  const int64_t l = k.layer - first_;
  MOE_CHECK(l >= 0 && l < layers_ && k.expert >= 0 && k.expert < experts_, "prefetcher: expert ", k.layer, ".",
            k.expert, " outside layers [", first_, ", ", first_ + layers_, ") x ", experts_, " experts");
  return l * experts_ + k.expert;
}

void Prefetcher::begin_step() {
  std::fill(predicted_.begin(), predicted_.end(), -1.0);
  std::fill(predicted_count_.begin(), predicted_count_.end(), 0);
  queue_.clear();
}

void Prefetcher::predict(ExpertKey k, double score) {
  double& p = predicted_[static_cast<size_t>(slot(k))];
  if (p < 0) {
    ++predicted_count_[static_cast<size_t>(k.layer - first_)];
    p = score;
    queue_.push_back({k, score});
    return;
  }
  if (score > p) p = score;
  for (Prediction& q : queue_)
    if (q.key == k) q.score = std::max(q.score, score);
}

std::optional<Prediction> Prefetcher::peek() const {
  if (queue_.empty()) return std::nullopt;
  const auto best = std::min_element(queue_.begin(), queue_.end(), [](const Prediction& a, const Prediction& b) {
    if (a.key.layer != b.key.layer) return a.key.layer < b.key.layer;
    if (a.score != b.score) return a.score > b.score;
    return a.key.expert < b.key.expert;
  });
  return *best;
}

void Prefetcher::pop() {
  const std::optional<Prediction> p = peek();
  if (!p) return;
  queue_.erase(std::find_if(queue_.begin(), queue_.end(), [&](const Prediction& q) { return q.key == p->key; }));
}

PrefetchCounts Prefetcher::observe(int64_t layer, std::span<const int32_t> used) {
  std::erase_if(queue_, [&](const Prediction& q) { return q.key.layer <= layer; });
  PrefetchCounts c;
  const size_t li = static_cast<size_t>(layer - first_);
  if (layer < first_ || layer >= first_ + layers_ || predicted_count_[li] == 0) return c;
  c.predicted = static_cast<uint64_t>(predicted_count_[li]);
  c.used = used.size();
  for (int32_t e : used)
    if (predicted_[static_cast<size_t>(slot({static_cast<int32_t>(layer), e}))] >= 0) ++c.predicted_and_used;
  for (int64_t e = 0; e < experts_; ++e) predicted_[li * static_cast<size_t>(experts_) + static_cast<size_t>(e)] = -1;
  predicted_count_[li] = 0;
  totals_ += c;
  return c;
}

}  // namespace moe
