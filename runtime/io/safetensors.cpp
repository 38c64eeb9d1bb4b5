// safetensors reader. Validation follows huggingface/safetensors (tensor.rs, read_metadata and
// Metadata::validate) and adds the checks listed on SafetensorsFile::open: the header is
// checked completely before any tensor can be viewed, and every offset is bounds-checked with
// overflow-checked arithmetic, so a malicious header cannot make us read outside the mapping.
#include "runtime/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"
#include "runtime/io/utf8_check.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // ordered: entries() keeps header order

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's MAX_HEADER_SIZE
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kMetadataKey = "__metadata__";

// ---- JSON --------------------------------------------------------------------------------------

// "0xAB"
std::string hex_byte(char c) {
  constexpr const char* kDigits = "0123456789ABCDEF";
  const auto u = static_cast<unsigned char>(c);
  return {'0', 'x', kDigits[u >> 4], kDigits[u & 0xF]};
}

// SAX pass that stops at the first duplicate key in any object (nlohmann's DOM parser keeps the
// last value silently; the safetensors format forbids duplicates) or at the first syntax error,
// and records whether the top-level value is an object.
class StrictJsonChecker final : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool /*val*/) override { return true; }
  bool number_integer(number_integer_t /*val*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*val*/) override { return true; }
  bool number_float(number_float_t /*val*/, const string_t& /*s*/) override { return true; }
  bool string(string_t& /*val*/) override { return true; }
  bool binary(binary_t& /*val*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override {
    if (depth_ == 0) top_is_object_ = true;
    if (++depth_ > kMaxJsonDepth) return too_deep();
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& val) override {
    if (keys_.back().insert(val).second) return true;
    duplicate_ = val;
    return false;
  }
  bool end_object() override {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    if (++depth_ > kMaxJsonDepth) return too_deep();
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    error_ = ex.what();
    return false;
  }

  const std::optional<std::string>& duplicate() const { return duplicate_; }
  // Nested deeper than kMaxJsonDepth (the DOM copies and dumps recursively): stopped there.
  bool nested_too_deep() const { return too_deep_; }
  const std::string& error() const { return error_; }
  bool top_is_object() const { return top_is_object_; }

 private:
  bool too_deep() {
    too_deep_ = true;
    return false;
  }
  std::vector<std::set<std::string>> keys_;  // keys seen so far, one set per open object
  size_t depth_ = 0;
  bool top_is_object_ = false;
  bool too_deep_ = false;
  std::optional<std::string> duplicate_;
  std::string error_;
};

// Parses `text` as one JSON object. Rejects invalid UTF-8, invalid JSON, duplicate keys (at any
// depth) and a top-level value that is not an object. `where` starts every message ("<path>")
// and `what` names the text ("header", "index").
Json parse_json_object(std::string_view text, const std::string& where, const char* what) {
  const size_t bad = find_invalid_utf8(text);
  MOE_CHECK(bad == std::string_view::npos, where, ": ", what, " is not valid UTF-8 (bad byte ", hex_byte(text[bad]),
            " at offset ", bad, ")");
  StrictJsonChecker checker;
  const bool ok = Json::sax_parse(text.begin(), text.end(), &checker);
  if (checker.duplicate()) fail(where, ": ", what, " has duplicate key \"", *checker.duplicate(), "\"");
  if (checker.nested_too_deep()) fail(where, ": ", what, " nests deeper than ", kMaxJsonDepth, " levels");
  MOE_CHECK(ok, where, ": ", what, " is not valid JSON: ", checker.error());
  MOE_CHECK(checker.top_is_object(), where, ": ", what, " is not a JSON object");
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {  // unreachable after the SAX pass succeeded
    fail(where, ": ", what, " is not valid JSON: ", e.what());
  }
}

// ---- header entries ------------------------------------------------------------------------------

// a * b, or nullopt when it overflows 64 bits.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

const Json& require_key(const Json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  MOE_CHECK(it != obj.end(), where, ": missing \"", key, "\"");
  return *it;
}

DType parse_dtype(const Json& v, const std::string& where) {
  MOE_CHECK(v.is_string(), where, ": dtype must be a string, found ", v.type_name(), " ", json_excerpt(v));
  const auto& s = v.get_ref<const std::string&>();
  const auto t = dtype_from_name(s);
  MOE_CHECK(t.has_value(), where, ": unknown dtype \"", s, "\"");
  return *t;
}

std::vector<int64_t> parse_shape(const Json& v, const std::string& where) {
  MOE_CHECK(v.is_array(), where, ": shape must be an array, found ", v.type_name(), " ", json_excerpt(v));
  std::vector<int64_t> shape;
  shape.reserve(v.size());
  for (const auto& d : v) {
    MOE_CHECK(!d.is_number_integer() || d.is_number_unsigned(), where, ": negative dim ", json_excerpt(d), " in shape ",
              json_excerpt(v));
    MOE_CHECK(d.is_number_unsigned(), where, ": shape ", json_excerpt(v),
              " has a dim that is not a non-negative integer: ", json_excerpt(d));
    const auto u = d.get<uint64_t>();
    MOE_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": dim ", u, " in shape ",
              json_excerpt(v), " is too large");
    shape.push_back(static_cast<int64_t>(u));
  }
  return shape;
}

std::pair<uint64_t, uint64_t> parse_offsets(const Json& v, const std::string& where) {
  MOE_CHECK(v.is_array() && v.size() == 2 && v[0].is_number_unsigned() && v[1].is_number_unsigned(), where,
            ": data_offsets must be [begin, end] with two non-negative integers, found ", json_excerpt(v));
  return {v[0].get<uint64_t>(), v[1].get<uint64_t>()};
}

// Bytes that `shape` of `t` occupies; throws on 64-bit overflow or a size that is not a whole
// number of bytes (F4 with an odd element count), as the reference does.
uint64_t tensor_bytes(DType t, const std::vector<int64_t>& shape, const std::string& where) {
  uint64_t numel = 1;
  for (const int64_t d : shape) {
    const auto n = checked_mul(numel, static_cast<uint64_t>(d));
    MOE_CHECK(n && *n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": shape ",
              shape_str(shape), " has too many elements (overflow)");
    numel = *n;
  }
  const auto bits = checked_mul(numel, static_cast<uint64_t>(dtype_bits(t)));
  MOE_CHECK(bits.has_value(), where, ": shape ", shape_str(shape), " of ", dtype_name(t), " is too large (overflow)");
  MOE_CHECK(*bits % 8 == 0, where, ": shape ", shape_str(shape), " of ", dtype_name(t), " has ", numel,
            " elements = ", *bits, " bits, not a whole number of bytes");
  return *bits / 8;
}

// One tensor entry of the header, fully checked on its own (tiling is checked afterwards).
SafetensorsEntry parse_entry(const std::string& name, const Json& v, const std::string& path) {
  const std::string where = str_cat(path, ": tensor '", name, "'");
  MOE_CHECK(v.is_object(), where, ": entry must be an object with dtype, shape and data_offsets, found ",
            v.type_name());
  SafetensorsEntry e;
  e.name = name;
  e.dtype = parse_dtype(require_key(v, "dtype", where), where);
  e.shape = parse_shape(require_key(v, "shape", where), where);
  std::tie(e.begin, e.end) = parse_offsets(require_key(v, "data_offsets", where), where);
  MOE_CHECK(e.end >= e.begin, where, ": data_offsets [", e.begin, ", ", e.end, "): end < begin");
  const uint64_t need = tensor_bytes(e.dtype, e.shape, where);
  MOE_CHECK(e.end - e.begin == need, where, ": data_offsets [", e.begin, ", ", e.end, ") hold ", e.end - e.begin,
            " bytes but shape ", shape_str(e.shape), " of ", dtype_name(e.dtype), " needs ", need);
  return e;
}

std::map<std::string, std::string> parse_metadata(const Json& v, const std::string& path) {
  MOE_CHECK(v.is_object(), path, ": ", kMetadataKey, " must be an object of strings, found ", v.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.items()) {
    MOE_CHECK(val.is_string(), path, ": ", kMetadataKey, " key '", k, "' must map to a string, found ", val.type_name(),
              " ", json_excerpt(val));
    out.emplace(k, val.get<std::string>());
  }
  return out;
}

// Tensors sorted by (begin, end) must tile [0, last end) exactly. Returns the last end.
uint64_t check_tiling(const std::vector<SafetensorsEntry>& entries, const std::string& path) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  uint64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const size_t i : order) {
    const SafetensorsEntry& e = entries[i];
    if (e.begin != pos) {
      const std::string where = str_cat(path, ": tensor '", e.name, "'");
      MOE_CHECK(prev != nullptr, where, ": first tensor by offset begins at ", e.begin, ", expected 0 (data_offsets [",
                e.begin, ", ", e.end, "))");
      MOE_CHECK(e.begin > pos, where, ": data_offsets [", e.begin, ", ", e.end, ") overlap tensor '", prev->name,
                "' at [", prev->begin, ", ", prev->end, ")");
      fail(where, ": gap of ", e.begin - pos, " bytes before data_offsets [", e.begin, ", ", e.end,
           "): previous tensor '", prev->name, "' ends at ", pos);
    }
    pos = e.end;
    prev = &e;
  }
  return pos;
}

// Name of the tensor whose end is `end` (for messages about the buffer length).
std::string tensor_ending_at(const std::vector<SafetensorsEntry>& entries, uint64_t end) {
  for (const auto& e : entries)
    if (e.end == end && e.end > e.begin) return e.name;
  return entries.empty() ? std::string() : entries.back().name;
}

void check_buffer_length(const std::vector<SafetensorsEntry>& entries, uint64_t last_end, uint64_t buffer_len,
                         const std::string& path) {
  if (buffer_len == last_end) return;
  if (entries.empty()) {
    fail(path, ": data buffer is ", buffer_len, " bytes but the header names no tensors: ", buffer_len,
         " trailing bytes");
  }
  const std::string last = tensor_ending_at(entries, last_end);
  MOE_CHECK(buffer_len > last_end, path, ": file truncated: data buffer is ", buffer_len,
            " bytes but the last tensor '", last, "' ends at ", last_end, " (", last_end - buffer_len,
            " bytes missing)");
  fail(path, ": data buffer is ", buffer_len, " bytes but the last tensor '", last, "' ends at ", last_end, ": ",
       buffer_len - last_end, " trailing bytes after the last tensor");
}

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---- checkpoint helpers -------------------------------------------------------------------------

// A shard name from the index as a path under the checkpoint directory; throws when it is
// empty, absolute, contains NUL or a ".." component (it would escape the directory).
fs::path shard_relative_path(const std::string& name, const std::string& where) {
  MOE_CHECK(!name.empty(), where, ": empty shard file name");
  MOE_CHECK(name.find('\0') == std::string::npos, where, ": shard name \"", name, "\" contains a NUL byte");
  const fs::path rel(name);
  MOE_CHECK(!rel.is_absolute() && !rel.has_root_path(), where, ": shard path \"", name,
            "\" is absolute; it must be relative to the checkpoint directory");
  for (const auto& part : rel) {
    MOE_CHECK(part != "..", where, ": shard path \"", name,
              "\" contains '..' and would escape the checkpoint directory");
  }
  return rel.lexically_normal();
}

struct IndexFile {
  std::vector<std::pair<std::string, fs::path>> weight_map;  // tensor -> shard (relative)
  std::vector<fs::path> shards;                              // distinct, sorted
};

IndexFile read_index(const fs::path& index_path) {
  const std::string where = index_path.string();
  const MappedFile f = MappedFile::open(index_path);
  const std::string_view text(reinterpret_cast<const char*>(f.data()), f.size());
  const Json j = parse_json_object(text, where, "index");
  const auto wm = j.find("weight_map");
  MOE_CHECK(wm != j.end(), where, ": missing \"weight_map\"");
  MOE_CHECK(wm->is_object(), where, ": \"weight_map\" must be an object, found ", wm->type_name());
  IndexFile out;
  std::set<fs::path> shards;
  for (const auto& [tensor, shard] : wm->items()) {
    MOE_CHECK(shard.is_string(), where, ": weight_map entry for tensor '", tensor,
              "' must be a file name string, found ", shard.type_name());
    const fs::path rel = shard_relative_path(shard.get<std::string>(), str_cat(where, ": tensor '", tensor, "'"));
    out.weight_map.emplace_back(tensor, rel);
    shards.insert(rel);
  }
  out.shards.assign(shards.begin(), shards.end());
  return out;
}

// Every regular *.safetensors file directly in `dir`, sorted by name.
std::vector<fs::path> list_safetensors(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(dir, ec)) {
    if (ent.path().extension() == ".safetensors" && ent.is_regular_file()) out.push_back(ent.path());
  }
  MOE_CHECK(!ec, dir.string(), ": cannot list directory: ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// The files that make up checkpoint directory `dir`, in the order they are opened: the shards
// named by model.safetensors.index.json (then `index` is set, shards[i] <-> result[i], each
// checked to exist), else model.safetensors alone, else every *.safetensors (at least one).
std::vector<fs::path> checkpoint_files(const fs::path& dir, std::optional<IndexFile>& index) {
  std::error_code ec;
  MOE_CHECK(fs::is_directory(dir, ec), dir.string(), ": not a directory",
            ec ? str_cat(" (", ec.message(), ")") : std::string());
  const fs::path index_path = dir / kIndexName;
  std::vector<fs::path> paths;
  if (fs::exists(index_path, ec)) {
    index = read_index(index_path);
    for (const auto& rel : index->shards) {
      paths.push_back(dir / rel);
      MOE_CHECK(fs::exists(paths.back(), ec), index_path.string(), ": shard '", rel.string(),
                "' named in weight_map does not exist (", paths.back().string(), ")");
    }
  } else if (fs::exists(dir / kSingleName, ec)) {
    paths.push_back(dir / kSingleName);
  } else {
    paths = list_safetensors(dir);
    MOE_CHECK(!paths.empty(), dir.string(), ": no safetensors files found (looked for ", kIndexName, ", ", kSingleName,
              " and *.safetensors)");
  }
  return paths;
}

// Every tensor the index places in a shard must be in that shard.
void check_weight_map(const IndexFile& index, const std::map<fs::path, const SafetensorsFile*>& by_shard,
                      const fs::path& index_path) {
  for (const auto& [tensor, rel] : index.weight_map) {
    const SafetensorsFile* f = by_shard.at(rel);
    MOE_CHECK(f->find(tensor) != nullptr, index_path.string(), ": weight_map places tensor '", tensor, "' in '",
              rel.string(), "' but that file does not hold it");
  }
}

}  // namespace

// ---- SafetensorsFile ----------------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile st;
  st.file_ = MappedFile::open(path);
  const std::string where = path.string();
  const uint64_t size = st.file_.size();
  MOE_CHECK(size >= 8, where, ": file is ", size, " bytes, shorter than the 8-byte header length prefix");
  const uint64_t n = read_le_u64(st.file_.data());
  MOE_CHECK(n <= kMaxHeaderBytes, where, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  MOE_CHECK(n <= size - 8, where, ": header length ", n, " runs past the end of the file (", size,
            " bytes, so at most ", size - 8, ")");

  const std::string_view text(reinterpret_cast<const char*>(st.file_.data() + 8), n);
  const Json header = parse_json_object(text, where, "header");
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      st.metadata_ = parse_metadata(value, where);
      continue;
    }
    st.index_.emplace(key, st.entries_.size());  // keys are unique: the SAX pass checked
    st.entries_.push_back(parse_entry(key, value, where));
  }
  const uint64_t last_end = check_tiling(st.entries_, where);
  check_buffer_length(st.entries_, last_end, size - 8 - n, where);
  st.buffer_ = st.file_.data() + 8 + n;
  return st;
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

TensorView SafetensorsFile::view(std::string_view name) const {
  const SafetensorsEntry* e = find(name);
  MOE_CHECK(e != nullptr, path().string(), ": tensor '", name, "' not found");
  TensorView v;
  v.name = e->name;
  v.file = path().string();
  v.dtype = e->dtype;
  v.shape = e->shape;
  v.data = buffer_ + e->begin;  // in bounds: open() checked end <= buffer length
  v.nbytes = e->end - e->begin;
  return v;
}

// ---- SafetensorsCheckpoint ----------------------------------------------------------------------

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::filesystem::path& dir) {
  SafetensorsCheckpoint ck;
  ck.dir_ = dir;
  std::optional<IndexFile> index;
  const std::vector<fs::path> paths = checkpoint_files(dir, index);

  std::map<fs::path, const SafetensorsFile*> by_shard;  // index shard name -> opened file
  for (size_t i = 0; i < paths.size(); ++i) {
    ck.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(paths[i])));
    if (index) by_shard.emplace(index->shards[i], ck.files_.back().get());
  }
  for (const auto& f : ck.files_) {
    for (const auto& e : f->entries()) {
      const auto [it, inserted] = ck.where_.emplace(e.name, f.get());
      MOE_CHECK(inserted, dir.string(), ": tensor '", e.name, "' is in two files: ", it->second->path().string(),
                " and ", f->path().string());
    }
  }
  if (index) check_weight_map(*index, by_shard, dir / kIndexName);
  return ck;
}

bool SafetensorsCheckpoint::contains(std::string_view name) const {
  return where_.find(name) != where_.end();
}

TensorView SafetensorsCheckpoint::tensor(std::string_view name) const {
  const auto it = where_.find(name);
  MOE_CHECK(it != where_.end(), dir_.string(), ": tensor '", name, "' not found in the checkpoint");
  return it->second->view(name);
}

std::vector<std::string> SafetensorsCheckpoint::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& [name, file] : where_) names.push_back(name);
  return names;
}

uint64_t SafetensorsCheckpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& f : files_)
    for (const auto& e : f->entries()) total += e.end - e.begin;
  return total;
}

}  // namespace moe
