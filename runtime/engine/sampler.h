// Next-token choice from logits: greedy, or temperature -> top-k -> top-p -> sample, in the
// order transformers' generate applies its warpers. Deterministic for a given seed on every
// platform (mt19937_64 with our own uniform conversion).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace moe {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off; keep the smallest top set whose probability reaches top_p
  uint64_t seed = 0;

  // Throws moe::Error for negative temperature/top_k or top_p outside (0, 1].
  void validate() const;
  std::string describe() const;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  // Returns a token id in [0, logits.size()).
  int32_t sample(std::span<const float> logits);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused: no allocation per token
  std::vector<double> probs_;
};

// Index of the largest value; the lowest index among equal maxima (as torch.argmax).
int32_t argmax(std::span<const float> logits);

}  // namespace moe
