#include "ggml_reference.h"

#include "kernels/quant/ggml_quants.h"

namespace moe::test {

static_assert(static_cast<int>(QuantType::kGgmlIQ4_XS) - static_cast<int>(QuantType::kGgmlQ4_0) == 10,
              "ggml_reference_row's index order is QuantType's ggml order");

void ggml_reference_row(int index, const uint8_t* src, int64_t n, float* dst) {
  const auto t = static_cast<QuantType>(static_cast<int>(QuantType::kGgmlQ4_0) + index);
  ggml_dequantize_row(t, src, n, dst);
}

}  // namespace moe::test
