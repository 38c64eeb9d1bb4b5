// Quantize-on-load: `moe run --model HF_DIR --quant RECIPE` converts the checkpoint once into a
// packed store in the cache and loads that; later runs with the same source, recipe and
// quantizer reuse it. The cache key covers the source files (names, sizes, modification times),
// so an edited checkpoint is converted again.
#pragma once

#include <filesystem>
#include <functional>

#include "runtime/quant/convert.h"

namespace moe {

// $MOE_CACHE_DIR, else $XDG_CACHE_HOME/moe, else $HOME/.cache/moe, else ./.moe-cache.
std::filesystem::path quant_cache_root();

// The cached store's directory for this source, recipe and quantizer (it may not exist yet).
std::filesystem::path quant_cache_path(const std::filesystem::path& hf_dir, const QuantRecipe& recipe,
                                       const QuantizeOptions& options);

// The store's directory, converting into the cache first when it holds no complete store
// (`*converted` tells which happened). Concurrent runs convert to their own partial directories;
// the first to finish wins and the others use its result.
std::filesystem::path cached_packed_model(const std::filesystem::path& hf_dir, const QuantRecipe& recipe,
                                          const QuantizeOptions& options,
                                          const std::function<void(const ConvertProgress&)>& progress, bool* converted);

}  // namespace moe
