// The communicator tests' inputs: rank r's buffer from seed + r, so every rank (and the checking
// side) can regenerate any rank's values. Shared by the thread and TCP tests and the MPI program.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace moe::parallel::test {

inline std::vector<float> random_floats(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<uint8_t> random_bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng() & 0xff);
  return v;
}

// A rank as a seed offset.
inline uint32_t u(int r) {
  return static_cast<uint32_t>(r);
}

// A float's bits: the all-reduce promises identical bits on every rank.
inline uint32_t float_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

}  // namespace moe::parallel::test
