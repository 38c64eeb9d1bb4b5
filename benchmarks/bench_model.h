// The benchmark's model directory: a random-weight model written by write_synthetic_model, reused
// across runs when the directory already holds exactly the model asked for.
#pragma once

#include <cstdint>
#include <filesystem>

#include "runtime/model/synthetic_model.h"

namespace moe::bench {

struct PreparedModel {
  bool written = false;  // false: reused
  double write_seconds = 0;
  int64_t params_written = 0;
};

// The Mixtral-shaped benchmark model of moe_bench_generate's defaults ("mixtral-moderate": 8 layers,
// hidden 1024, 16/4 heads, 8 experts top-2 x 3584, vocab 32000, bf16, seed 0): the same spec, so the
// same directory and stamp serve every benchmark that uses it.
SyntheticModelSpec mixtral_moderate_spec();

// Reuses `dir` when its config.json parses to the shape of `spec` and the stamp file this program
// leaves there (moe-bench-model.json) records the same spec and checkpoint size; otherwise writes
// the model. Throws moe::Error rather than overwrite a model directory this program did not write,
// unless `regenerate`.
PreparedModel prepare_model(const std::filesystem::path& dir, const SyntheticModelSpec& spec, bool regenerate);

}  // namespace moe::bench
