// Hugging Face checkpoint or GGUF file -> packed store (runtime/io/packed_store.h), tensor by tensor from
// the mapped source, so memory stays bounded whatever the model size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "kernels/quant/quantize.h"
#include "runtime/quant/recipe.h"

namespace moe {

struct ConvertProgress {
  uint64_t bytes_done = 0;  // source bytes processed
  uint64_t bytes_total = 0;
  std::string tensor;  // the tensor being written
};

struct ConvertStats {
  uint64_t source_bytes = 0;
  uint64_t output_bytes = 0;
  int64_t tensors = 0;
  int64_t experts = 0;
  double seconds = 0;
  // Relative reconstruction error ||w - deq(q(w))||_2 / ||w||_2 per tensor kind, over all
  // quantized tensors of that kind (for the accuracy report).
  std::map<std::string, double> relative_error;
};

// Writes the store at `out` (must not exist). Throws moe::Error for an invalid source, a
// tensor the recipe cannot hold (row length not a multiple of the group size), an I/O failure.
// `progress` is called after each tensor (and may be empty).
// Every tensor is checked against the recipe before anything is written. The store is written
// into `<out>.partial-<pid>/` and renamed onto `out` when complete; on any error or exception
// (including one thrown by `progress`, e.g. to stop on Ctrl-C) the partial directory is
// removed. With `replace`, an existing `out` is replaced, but only once the new store is
// complete.
ConvertStats convert_checkpoint(const std::filesystem::path& hf_dir, const QuantRecipe& recipe,
                                const QuantizeOptions& options, const std::filesystem::path& out,
                                const std::function<void(const ConvertProgress&)>& progress = {}, bool replace = false);

}  // namespace moe
