// The random numbers of synthetic models (write_synthetic_model, write_synthetic_packed_store):
// splitmix64, fast, good enough for random weights, identical on every platform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moe {

class SyntheticRng {
 public:
  explicit SyntheticRng(uint64_t seed) : s_(seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float symmetric() { return static_cast<float>(static_cast<double>(next() >> 11) * 0x1p-52 - 1.0); }
  // n random bytes.
  void fill(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
  }

 private:
  uint64_t s_;
};

}  // namespace moe
