// CpuBackend behaviour that the model-level tests do not reach.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "runtime/backend/cpu_backend.h"

namespace moe {
namespace {

// A tensor whose mapped bytes start at an odd address (possible in a safetensors file whose
// writer did not pad the header) is copied to aligned memory with the same values.
TEST(CpuBackend, RealignsMisalignedWeights) {
  std::vector<float> values = {1.5f, -2.25f, 3.0f, 0.125f, -7.0f, 9.5f};
  std::vector<uint8_t> storage(values.size() * sizeof(float) + 8);
  uint8_t* odd = storage.data() + 1;
  std::memcpy(odd, values.data(), values.size() * sizeof(float));
  TensorView view{.name = "w",
                  .file = "f",
                  .dtype = DType::kF32,
                  .shape = {2, 3},
                  .data = odd,
                  .nbytes = values.size() * sizeof(float)};
  CpuBackend backend(1);
  Tensor t = backend.load_weight(view);
  EXPECT_EQ(backend.realigned_weights(), 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignof(float), 0u);
  EXPECT_EQ(t.rank, 2);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(1), 3);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.as<const float>()[i], values[i]);

  // Aligned data is used in place.
  TensorView aligned = view;
  aligned.data = values.data();
  EXPECT_EQ(backend.load_weight(aligned).data, values.data());
  EXPECT_EQ(backend.realigned_weights(), 1);
}

}  // namespace
}  // namespace moe
