// What the offloading tests share: the tiny 3-layer Mixtral written once per test suite and its
// packed stores in three recipes, and the comparison with the resident run's logits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "runtime/model/synthetic_model.h"
#include "runtime/quant/convert.h"
#include "tests/model/model_test_util.h"

namespace moe::test {

// Stores "q4", "attn=keep" (unquantized) and "mixed-4-2" of the same synthetic model.
class OffloadStores : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    SyntheticModelSpec spec = tiny_model_spec("mixtral");
    spec.num_layers = 3;
    spec.expert_intermediate = 128;
    write_synthetic_model(spec, dir_->path() / "hf");
    for (const char* recipe : {"q4", "attn=keep", "mixed-4-2"})
      convert_checkpoint(dir_->path() / "hf", QuantRecipe::parse(recipe), QuantizeOptions{}, dir_->path() / recipe);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path store(const char* recipe) { return dir_->path() / recipe; }
  static std::filesystem::path checkpoint() { return dir_->path() / "hf"; }
  static inline TempDir* dir_ = nullptr;
};

// The largest |a - b| over two runs' logits (which must have the same length).
inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace moe::test
