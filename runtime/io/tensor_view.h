// A read-only view of one stored tensor (memory-mapped file data or a host buffer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <optional>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"

namespace moe {

struct TensorView {
  std::string name;  // tensor name in the checkpoint
  std::string file;  // file it came from (for error messages)
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first, as in safetensors / PyTorch
  const void* data = nullptr;  // valid while the owning file stays open
  uint64_t nbytes = 0;
  // Set when data holds quantized blocks (kernels/quant/quant_format.h) of rows along the last
  // dimension; `shape` is then the logical shape and `dtype` is meaningless.
  std::optional<QuantFormat> quant{};

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  WeightRef ref() const { return {data, dtype}; }
};

// "[4, 64]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace moe
