#include "runtime/model/weight_shard.h"

#include <cstring>
#include <new>

#include "runtime/core/error.h"

namespace moe {
namespace {

uint64_t outer_row_bytes(const TensorView& v) {
  MOE_CHECK(!v.shape.empty() && v.shape[0] > 0, v.file, ": tensor '", v.name, "' has no rows to shard");
  return v.nbytes / static_cast<uint64_t>(v.shape[0]);
}

}  // namespace

TensorView view_index(const TensorView& v, int64_t i) {
  MOE_CHECK(v.shape.size() >= 2 && i >= 0 && i < v.shape[0], v.file, ": tensor '", v.name, "': index ", i, " of shape ",
            shape_str(v.shape));
  TensorView out = v;
  const uint64_t row = outer_row_bytes(v);
  out.data = static_cast<const std::byte*>(v.data) + static_cast<uint64_t>(i) * row;
  out.nbytes = row;
  out.shape.erase(out.shape.begin());
  out.name = str_cat(v.name, "[", i, "]");
  return out;
}

TensorView view_rows(const TensorView& v, int64_t begin, int64_t n) {
  MOE_CHECK(!v.shape.empty() && begin >= 0 && n > 0 && begin + n <= v.shape[0], v.file, ": tensor '", v.name,
            "': rows [", begin, ", ", begin + n, ") of shape ", shape_str(v.shape));
  TensorView out = v;
  const uint64_t row = outer_row_bytes(v);
  out.data = static_cast<const std::byte*>(v.data) + static_cast<uint64_t>(begin) * row;
  out.nbytes = row * static_cast<uint64_t>(n);
  out.shape[0] = n;
  return out;
}

TensorView copy_cols(const TensorView& v, int64_t begin, int64_t n, ShardStorage& storage) {
  MOE_CHECK(v.shape.size() == 2 && begin >= 0 && n > 0 && begin + n <= v.shape[1], v.file, ": tensor '", v.name,
            "': columns [", begin, ", ", begin + n, ") of shape ", shape_str(v.shape));
  const int64_t rows = v.shape[0], cols = v.shape[1];
  const uint64_t row_bytes = v.nbytes / static_cast<uint64_t>(rows);
  uint64_t first = 0, width = 0;  // byte offset and length of the columns within one row
  if (v.quant) {
    const int64_t g = v.quant->group_size;
    MOE_CHECK(begin % g == 0 && n % g == 0, v.file, ": tensor '", v.name, "' is quantized in groups of ", g,
              " columns; a tensor-parallel shard of columns [", begin, ", ", begin + n,
              ") cuts a group (choose a tensor-parallel size that divides ", cols / g, " groups)");
    const uint64_t block = quant_block_bytes(*v.quant);
    first = static_cast<uint64_t>(begin / g) * block;
    width = static_cast<uint64_t>(n / g) * block;
  } else {
    const uint64_t elem = row_bytes / static_cast<uint64_t>(cols);
    first = static_cast<uint64_t>(begin) * elem;
    width = static_cast<uint64_t>(n) * elem;
  }
  const uint64_t bytes = width * static_cast<uint64_t>(rows);
  std::shared_ptr<std::byte[]> buf(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})),
                                   [](std::byte* p) { ::operator delete[](p, std::align_val_t{64}); });
  const auto* src = static_cast<const std::byte*>(v.data);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(buf.get() + static_cast<uint64_t>(r) * width, src + static_cast<uint64_t>(r) * row_bytes + first,
                width);
  storage.buffers.push_back(buf);
  storage.bytes += bytes;
  TensorView out = v;
  out.data = buf.get();
  out.nbytes = bytes;
  out.shape[1] = n;
  out.name = str_cat(v.name, "[:, ", begin, ":", begin + n, "]");
  return out;
}

}  // namespace moe
