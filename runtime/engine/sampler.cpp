#include "runtime/engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace moe {

void SamplingParams::validate() const {
  MOE_CHECK(temperature >= 0.0f && std::isfinite(temperature), "--temperature must be >= 0, got ", temperature);
  MOE_CHECK(top_k >= 0, "--top-k must be >= 0, got ", top_k);
  MOE_CHECK(top_p > 0.0f && top_p <= 1.0f, "--top-p must be in (0, 1], got ", top_p);
}

std::string SamplingParams::describe() const {
  if (temperature == 0.0f) return "greedy";
  return str_cat("temperature ", temperature, ", top-k ", top_k, ", top-p ", top_p, ", seed ", seed);
}

int32_t argmax(std::span<const float> logits) {
  MOE_CHECK(!logits.empty(), "argmax of no logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(SamplingParams params) : p_(params), rng_(params.seed) {
  p_.validate();
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (p_.temperature == 0.0f) return argmax(logits);

  // Temperature, then the top-k candidates in descending order (ties: lower id first).
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {logits[i] / p_.temperature, static_cast<int32_t>(i)};
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = static_cast<size_t>(p_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(),
                      by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }

  // Softmax over the kept candidates in double.
  probs_.resize(keep);
  const double max_logit = candidates_[0].first;
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) sum += probs_[i] = std::exp(static_cast<double>(candidates_[i].first) - max_logit);
  for (size_t i = 0; i < keep; ++i) probs_[i] /= sum;

  // Top-p: a candidate stays while the probability mass above it is below top_p.
  if (p_.top_p < 1.0f) {
    double above = 0.0;
    size_t n = 0;
    while (n < keep && (n == 0 || above < p_.top_p)) above += probs_[n++];
    keep = n;
    double kept = 0.0;
    for (size_t i = 0; i < keep; ++i) kept += probs_[i];
    for (size_t i = 0; i < keep; ++i) probs_[i] /= kept;
  }

  // Inverse CDF with a 53-bit uniform in [0, 1).
  const double u = static_cast<double>(rng_() >> 11) * 0x1p-53;
  double cdf = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cdf += probs_[i];
    if (u < cdf) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;  // rounding left u above the last cdf
}

}  // namespace moe
