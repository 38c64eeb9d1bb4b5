#include "runtime/backend/tensor.h"

#include "runtime/core/error.h"

namespace moe {

Tensor::Tensor(void* d, DType t, Device dev, std::initializer_list<int64_t> dims)
    : data(d), dtype(t), device(dev), rank(static_cast<int>(dims.size())) {
  MOE_CHECK(dims.size() <= shape.size(), "Tensor: rank ", dims.size(), " > 4");
  size_t i = 0;
  for (int64_t d2 : dims) shape[i++] = d2;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[static_cast<size_t>(i)];
  return n;
}

uint64_t Tensor::nbytes() const {
  if (rank == 0) return quant ? 0 : static_cast<uint64_t>(dtype_bits(dtype)) / 8;
  const int64_t last = shape[static_cast<size_t>(rank - 1)];
  return last == 0 ? 0 : static_cast<uint64_t>(numel() / last) * last_dim_bytes();
}

uint64_t Tensor::last_dim_bytes() const {
  const int64_t last = rank == 0 ? 1 : shape[static_cast<size_t>(rank - 1)];
  if (quant) return quant_row_bytes(*quant, last);
  return static_cast<uint64_t>(last) * static_cast<uint64_t>(dtype_bits(dtype)) / 8;
}

int64_t Tensor::row_size() const {
  return rank == 0 || shape[0] == 0 ? 0 : numel() / shape[0];
}

Tensor Tensor::first_rows(int64_t n) const {
  MOE_CHECK(rank >= 1 && n >= 0 && n <= shape[0], "Tensor::first_rows(", n, ") of ", shape_str(*this));
  Tensor t = *this;
  t.shape[0] = n;
  return t;
}

Tensor Tensor::reshaped(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, device, dims);
  MOE_CHECK(t.numel() == numel(), "Tensor::reshaped: ", shape_str(*this), " -> ", shape_str(t));
  return t;
}

Tensor Tensor::row(int64_t i) const {
  MOE_CHECK(rank >= 2 && i >= 0 && i < shape[0], "Tensor::row(", i, ") of ", shape_str(*this));
  Tensor t;
  t.dtype = dtype;
  t.device = device;
  t.quant = quant;
  t.qlayout = qlayout;
  t.rank = rank - 1;
  for (int d = 1; d < rank; ++d) t.shape[static_cast<size_t>(d - 1)] = shape[static_cast<size_t>(d)];
  MOE_CHECK(qlayout != QuantLayout::kTile16 || (i * (t.numel() / t.shape[static_cast<size_t>(t.rank - 1)])) % 16 == 0,
            "Tensor::row(", i, ") of ", shape_str(*this),
            ": a 16-row tiled weight splits only at multiples of 16 rows");
  t.data = static_cast<uint8_t*>(data) + static_cast<uint64_t>(i) * t.nbytes();
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t n) const {
  MOE_CHECK(rank == 2 && begin >= 0 && n >= 0 && begin + n <= shape[0], "Tensor::slice_rows(", begin, ", ", n, ") of ",
            shape_str(*this));
  MOE_CHECK(qlayout != QuantLayout::kTile16 || begin % 16 == 0, "Tensor::slice_rows(", begin, ", ", n, ") of ",
            shape_str(*this), ": a 16-row tiled weight splits only at multiples of 16 rows");
  Tensor t = *this;
  t.shape[0] = n;
  t.data = static_cast<uint8_t*>(data) + static_cast<uint64_t>(begin) * last_dim_bytes();
  return t;
}

std::string shape_str(const Tensor& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.shape[static_cast<size_t>(i)]);
  return s + "]";
}

}  // namespace moe
