#include "runtime/io/packed_store.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"
#include "runtime/io/tensor_view.h"

namespace moe {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kDenseAlign = 64;
constexpr uint64_t kExpertAlign = 4096;

std::string hex64(uint64_t v) {
  std::array<char, 17> buf{};
  std::snprintf(buf.data(), buf.size(), "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf.data(), 16);
}

// Reads and checks one manifest field.
class Fields {
 public:
  Fields(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    MOE_CHECK(j_.is_object(), where_, " is not a JSON object");
  }
  const json& get(const char* key) const {
    const auto it = j_.find(key);
    MOE_CHECK(it != j_.end(), where_, ": missing \"", key, "\"");
    return *it;
  }
  std::string str(const char* key) const {
    const json& v = get(key);
    MOE_CHECK(v.is_string(), where_, ": \"", key, "\" must be a string");
    return v.get<std::string>();
  }
  uint64_t u64(const char* key) const {
    const json& v = get(key);
    MOE_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), where_, ": \"", key,
              "\" must be a non-negative integer");
    return v.get<uint64_t>();
  }
  int64_t i64(const char* key) const {
    const json& v = get(key);
    MOE_CHECK(v.is_number_integer(), where_, ": \"", key, "\" must be an integer");
    return v.get<int64_t>();
  }

 private:
  const json& j_;
  std::string where_;
};

struct Span {
  uint64_t begin, end;
  std::string what;
};

// Sorted spans must not overlap.
void check_no_overlap(std::vector<Span> spans, const fs::path& file) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    MOE_CHECK(spans[i].begin >= spans[i - 1].end, file.string(), ": ", spans[i - 1].what, " [", spans[i - 1].begin,
              ", ", spans[i - 1].end, ") overlaps ", spans[i].what, " [", spans[i].begin, ", ", spans[i].end, ")");
}

}  // namespace

bool PackedStore::is_packed(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "manifest.json", ec);
}

PackedStore PackedStore::open(const fs::path& dir, bool verify) {
  PackedStore s;
  s.dir_ = dir;
  const fs::path manifest_path = dir / "manifest.json";
  std::error_code ec;
  MOE_CHECK(fs::is_regular_file(manifest_path, ec), dir.string(),
            ": not a packed model: manifest.json is missing (write one with moe convert)");
  std::ifstream in(manifest_path, std::ios::binary);
  MOE_CHECK(in.good(), manifest_path.string(), ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  check_json_depth(text, manifest_path.string());
  json m;
  try {
    m = json::parse(text);
  } catch (const json::exception& e) {
    fail(manifest_path.string(), ": invalid JSON: ", e.what());
  }
  const std::string where = manifest_path.string();
  const Fields top(m, where);
  const std::string format = top.str("format");
  MOE_CHECK(format == "moe-packed", where, ": format is '", format, "', expected 'moe-packed'");
  const int64_t version = top.i64("version");
  MOE_CHECK(version <= kFormatVersion, where, ": written by a newer moe (format version ", version,
            "; this build reads up to ", kFormatVersion, ")");
  MOE_CHECK(version >= 1, where, ": invalid format version ", version);
  s.recipe_ = top.str("recipe");
  const Fields source(top.get("source"), where + ": \"source\"");
  s.config_ = source.get("config");
  MOE_CHECK(s.config_.is_object(), where, ": \"source\".\"config\" must be a JSON object");

  // Data files, mapped once each.
  const json& tensors = top.get("tensors");
  MOE_CHECK(tensors.is_array(), where, ": \"tensors\" must be an array");
  const json& experts = top.get("experts");
  MOE_CHECK(experts.is_array(), where, ": \"experts\" must be an array");
  auto map_file = [&](const char* name) -> std::unique_ptr<MappedFile> {
    const fs::path p = dir / name;
    std::error_code e2;
    if (!fs::exists(p, e2)) return nullptr;
    return std::make_unique<MappedFile>(MappedFile::open(p));
  };
  s.dense_ = map_file("dense.bin");
  s.experts_file_ = map_file("experts.bin");
  auto file_of = [&](const std::string& name, const std::string& tensor) -> const MappedFile& {
    const std::unique_ptr<MappedFile>* f = nullptr;
    if (name == "dense.bin")
      f = &s.dense_;
    else if (name == "experts.bin")
      f = &s.experts_file_;
    else
      fail(where, ": tensor '", tensor, "': unknown file '", name, "' (expected dense.bin or experts.bin)");
    MOE_CHECK(*f != nullptr, (dir / name).string(), ": missing (the manifest places tensor '", tensor, "' in it)");
    return **f;
  };

  std::map<std::string, std::vector<Span>> spans;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Fields t(tensors[i], str_cat(where, ": tensors[", i, "]"));
    PackedTensor pt;
    pt.name = t.str("name");
    const std::string tw = str_cat(where, ": tensor '", pt.name, "'");
    MOE_CHECK(!s.tensors_.contains(pt.name), tw, " is listed twice");
    const json& shape = t.get("shape");
    MOE_CHECK(shape.is_array(), tw, ": \"shape\" must be an array");
    for (const json& d : shape) {
      MOE_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, tw, ": shape dims must be non-negative integers");
      pt.shape.push_back(d.get<int64_t>());
    }
    const std::string storage = t.str("storage");
    if (auto q = parse_quant_format(storage)) {
      pt.quant = *q;
    } else if (auto d = dtype_from_name(storage)) {
      pt.dtype = *d;
    } else {
      fail(tw, ": unknown storage '", storage,
           "' (expected a safetensors dtype such as F32, F16, BF16, or a quantized format such as q4g64)");
    }
    const std::string file_name = t.str("file");
    const uint64_t offset = t.u64("offset");
    pt.bytes = t.u64("bytes");
    const std::string xxh3 = t.str("xxh3");

    // Shape against bytes.
    uint64_t numel = 1;
    bool overflow = false;
    for (const int64_t d : pt.shape) overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel);
    MOE_CHECK(!overflow, tw, ": shape ", shape_str(pt.shape), " overflows");
    uint64_t expect = 0;
    if (pt.quant) {
      const int64_t k = pt.shape.empty() ? 1 : pt.shape.back();
      MOE_CHECK(k % pt.quant->group_size == 0, tw, ": shape ", shape_str(pt.shape), " has rows of ", k,
                " weights, not a multiple of the group size of ", storage);
      const uint64_t rows = k == 0 ? 0 : numel / static_cast<uint64_t>(k);
      expect = rows * quant_row_bytes(*pt.quant, k);
    } else {
      expect = numel * static_cast<uint64_t>(dtype_bits(pt.dtype)) / 8;
    }
    MOE_CHECK(expect == pt.bytes, tw, ": shape ", shape_str(pt.shape), " stored as ", storage, " needs ", expect,
              " bytes, the manifest says ", pt.bytes);

    const MappedFile& f = file_of(file_name, pt.name);
    pt.file = f.path().string();
    uint64_t end = 0;
    MOE_CHECK(!__builtin_add_overflow(offset, pt.bytes, &end) && end <= f.size(), f.path().string(),
              ": truncated or damaged: tensor '", pt.name, "' occupies bytes [", offset, ", ", end,
              ") but the file has ", f.size(), " bytes");
    if (file_name == "dense.bin")
      MOE_CHECK(offset % kDenseAlign == 0, tw, ": offset ", offset, " in dense.bin is not ", kDenseAlign,
                "-byte aligned");
    pt.data = f.data() + offset;
    spans[file_name].push_back({offset, end, str_cat("tensor '", pt.name, "'")});

    if (verify) {
      const uint64_t h = XXH3_64bits(pt.data, static_cast<size_t>(pt.bytes));
      MOE_CHECK(hex64(h) == xxh3, f.path().string(), ": checksum mismatch for tensor '", pt.name, "' (manifest xxh3 ",
                xxh3, ", data ", hex64(h), "): the file is damaged; convert the model again");
    }
    s.tensors_.emplace(pt.name, std::move(pt));
  }
  for (const auto& [file, list] : spans) check_no_overlap(list, dir / file);

  // Expert extents: inside experts.bin, 4 KiB aligned, disjoint, covering their tensors.
  std::vector<Span> extents;
  for (size_t i = 0; i < experts.size(); ++i) {
    const Fields x(experts[i], str_cat(where, ": experts[", i, "]"));
    ExpertExtent e{
        .layer = x.i64("layer"), .expert = x.i64("expert"), .offset = x.u64("offset"), .bytes = x.u64("bytes")};
    const std::string xw = str_cat("expert ", e.layer, ".", e.expert);
    MOE_CHECK(e.offset % kExpertAlign == 0, where, ": ", xw, ": offset ", e.offset, " in experts.bin is not ",
              kExpertAlign, "-byte aligned");
    MOE_CHECK(s.experts_file_ != nullptr, (dir / "experts.bin").string(), ": missing (the manifest lists ", xw, ")");
    uint64_t end = 0;
    MOE_CHECK(!__builtin_add_overflow(e.offset, e.bytes, &end) && end <= s.experts_file_->size(),
              s.experts_file_->path().string(), ": truncated or damaged: ", xw, " occupies bytes [", e.offset, ", ",
              end, ") but the file has ", s.experts_file_->size(), " bytes");
    extents.push_back({e.offset, end, xw});
    s.experts_.push_back(e);
  }
  check_no_overlap(extents, dir / "experts.bin");
  std::sort(extents.begin(), extents.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (const Span& t : spans["experts.bin"]) {
    auto it = std::upper_bound(extents.begin(), extents.end(), t.begin,
                               [](uint64_t v, const Span& x) { return v < x.begin; });
    const bool inside = it != extents.begin() && t.end <= std::prev(it)->end;
    MOE_CHECK(inside, where, ": ", t.what, " in experts.bin [", t.begin, ", ", t.end,
              ") lies outside every expert extent");
  }
  return s;
}

bool PackedStore::contains(std::string_view name) const {
  return tensors_.find(name) != tensors_.end();
}

PackedTensor PackedStore::tensor(std::string_view name) const {
  const auto it = tensors_.find(name);
  MOE_CHECK(it != tensors_.end(), dir_.string(), ": tensor '", name, "' not found in the packed store");
  return it->second;
}

std::vector<std::string> PackedStore::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [n, t] : tensors_) names.push_back(n);
  return names;
}

}  // namespace moe
