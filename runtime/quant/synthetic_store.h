// A random-weight model written straight into a packed store (runtime/io/packed_store.h), for
// benchmarks in shapes too large to write as a Hugging Face checkpoint first (Mixtral-8x7B in
// bf16 is 93 GB; its q4 store is 25 GB): the tensors of write_synthetic_model (same names,
// shapes and kinds), each stored as the recipe says. Quantized tensors get uniformly random
// codes with zero at mid-range and the scale that gives write_synthetic_model's weight range
// (so activations stay O(1)); kept and dense tensors are filled as write_synthetic_model fills
// them. Streams tensor by tensor (memory stays bounded) through PackedStoreWriter, so a partial
// store is never mistaken for a complete one. Deterministic for spec.seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "runtime/model/synthetic_model.h"
#include "runtime/quant/recipe.h"

namespace moe {

struct SyntheticStoreStats {
  int64_t params = 0;
  uint64_t bytes = 0;  // dense.bin + experts.bin
  int64_t experts = 0;
};

// Throws moe::Error when `out` exists (unless `replace`), for a recipe a tensor cannot take (row
// length not a multiple of the group size), or on an I/O failure. `progress(done, total)` is
// called after each tensor with the parameters written so far (may be empty).
SyntheticStoreStats write_synthetic_packed_store(const SyntheticModelSpec& spec, const QuantRecipe& recipe,
                                                 const std::filesystem::path& out, bool replace = false,
                                                 const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace moe
