// NumPy .npy (format 1.0) for float32 arrays: `moe run --dump-logits` writes them and tests
// read the golden logits from them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace moe {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // C order
};

// Writes little-endian '<f4', C order. Throws moe::Error naming the path on failure.
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);
// Reads '<f4' C-order arrays only; throws moe::Error naming the path and the problem.
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace moe
