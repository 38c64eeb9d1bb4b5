// SafetensorsWriter: produces files that huggingface/safetensors (and our reader) accept.
// Layout: u64 little-endian header length N, N bytes of compact JSON padded with spaces to a
// multiple of 8, then the tensors back to back in the order they were added.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/safetensors.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // ordered: "__metadata__" first, then names sorted

constexpr const char* kMetadataKey = "__metadata__";

// Bytes that `shape` of `t` occupies; nullopt on a negative dim, 64-bit overflow or a size
// that is not a whole number of bytes.
std::optional<uint64_t> expected_bytes(DType t, const std::vector<int64_t>& shape) {
  uint64_t bits = static_cast<uint64_t>(dtype_bits(t));
  for (const int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(bits, static_cast<uint64_t>(d), &bits)) return std::nullopt;
  }
  if (bits % 8 != 0) return std::nullopt;
  return bits / 8;
}

}  // namespace

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  const std::string where = str_cat("SafetensorsWriter: tensor '", name, "'");
  MOE_CHECK(name != kMetadataKey, where, ": name is reserved for metadata");
  const bool dup = std::any_of(tensors_.begin(), tensors_.end(), [&](const Pending& p) { return p.name == name; });
  MOE_CHECK(!dup, where, ": duplicate tensor name");
  const auto need = expected_bytes(dtype, shape);
  MOE_CHECK(need.has_value(), where, ": shape ", shape_str(shape), " of ", dtype_name(dtype),
            " is invalid (negative dim, overflow or not a whole number of bytes)");
  MOE_CHECK(bytes.size() == *need, where, ": got ", bytes.size(), " bytes but shape ", shape_str(shape), " of ",
            dtype_name(dtype), " needs ", *need);
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::set_metadata(std::map<std::string, std::string> metadata) {
  metadata_ = std::move(metadata);
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  Json header = Json::object();
  if (!metadata_.empty()) header[kMetadataKey] = metadata_;

  std::vector<std::pair<uint64_t, uint64_t>> offsets;  // in the order added
  uint64_t pos = 0;
  for (const auto& t : tensors_) {
    offsets.emplace_back(pos, pos + t.bytes.size());
    pos += t.bytes.size();
  }
  std::vector<size_t> by_name(tensors_.size());
  std::iota(by_name.begin(), by_name.end(), size_t{0});
  std::sort(by_name.begin(), by_name.end(), [&](size_t a, size_t b) { return tensors_[a].name < tensors_[b].name; });
  for (const size_t i : by_name) {
    Json entry = Json::object();
    entry["dtype"] = std::string(dtype_name(tensors_[i].dtype));
    entry["shape"] = tensors_[i].shape;
    entry["data_offsets"] = Json::array({offsets[i].first, offsets[i].second});
    header[tensors_[i].name] = std::move(entry);
  }

  std::string text;
  try {
    text = header.dump();  // compact, like serde_json; throws on names that are not UTF-8
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": cannot encode the header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  uint8_t len[8];
  for (size_t i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  AtomicFile out(path);
  out.write(len, sizeof len);
  out.write(text.data(), text.size());
  for (const auto& t : tensors_) out.write(t.bytes.data(), t.bytes.size());
  out.commit();
}

}  // namespace moe
