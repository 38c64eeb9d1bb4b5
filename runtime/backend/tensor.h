// A non-owning handle to a tensor in a backend's memory (host RAM for the CPU backend, device
// memory for CUDA). Row-major and contiguous; rank <= 4. Ownership stays with whoever made it:
// the backend's arena (activations, KV cache) or the weight source (mmapped checkpoint).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include <optional>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"

namespace moe {

enum class Device : uint8_t { kCpu, kCuda };

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = Device::kCpu;
  int rank = 0;
  std::array<int64_t, 4> shape{};
  // Quantized weights: blocks of rows along the last dimension (shape stays logical).
  std::optional<QuantFormat> quant{};
  // How a quantized weight's rows are laid out: kRows as stored, or the CPU backend's kTile16
  // (runs of 16 rows interleaved; row and slice_rows then need row offsets that are multiples
  // of 16).
  QuantLayout qlayout = QuantLayout::kRows;

  Tensor() = default;
  Tensor(void* d, DType t, Device dev, std::initializer_list<int64_t> dims);

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int64_t numel() const;
  // Storage bytes (packed blocks for quantized tensors).
  uint64_t nbytes() const;
  // Storage bytes of one row along the last dimension.
  uint64_t last_dim_bytes() const;
  // Elements per outermost index (numel / dim(0)).
  int64_t row_size() const;

  // The first `n` outer rows (same data pointer): activations sized for a prefill chunk
  // viewed for a shorter step.
  Tensor first_rows(int64_t n) const;
  // The same data viewed with a new shape of equal element count.
  Tensor reshaped(std::initializer_list<int64_t> dims) const;
  // Outer row `i` as a tensor of rank - 1 (e.g. one expert of a fused [E, 2I, H] weight).
  Tensor row(int64_t i) const;
  // Rows [begin, begin + n) of a rank-2 tensor, as rank 2.
  Tensor slice_rows(int64_t begin, int64_t n) const;

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  WeightRef ref() const { return {data, dtype}; }
};

std::string shape_str(const Tensor& t);

}  // namespace moe
