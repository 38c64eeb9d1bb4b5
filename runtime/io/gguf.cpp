// GGUF reader. The layout follows ggml's docs/gguf.md and gguf-py's GGUFReader (the oracle of
// the tests); the validation follows ggml's gguf.cpp (gguf_init_from_file_impl) and adds the checks
// listed on GgufFile::open. Every read goes through a bounds-checked cursor, every count is
// checked against the bytes left before anything is reserved, and every size is computed with
// overflow-checked arithmetic, so a malicious header can neither read outside the mapping nor
// make us allocate more than a small multiple of the file size.
#include "runtime/io/gguf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/io/utf8_check.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

// The file is little-endian and we read its fields with memcpy.
static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr std::array<uint8_t, 4> kMagic = {'G', 'G', 'U', 'F'};
constexpr uint64_t kFixedHeaderBytes = 4 + 4 + 8 + 8;  // magic, version, tensor count, kv count
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr int kMaxArrayDepth = 8;  // arrays of arrays: at most 8 levels, the outermost included
constexpr uint32_t kMaxDims = 4;   // GGML_MAX_DIMS
// Fewest bytes one key/value can take: u64 key length, a 1-byte key, u32 type, a 1-byte value.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// Fewest bytes one tensor info can take: u64 name length, a 1-byte name, u32 n_dims, one u64 dim,
// u32 type, u64 offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

// ---- ggml types ---------------------------------------------------------------------------------

struct GgmlTypeRow {
  uint32_t id;
  GgmlTypeInfo info;
};

// gguf-py constants.GGML_QUANT_SIZES (gguf 0.19.0), which mirrors ggml.c's type_traits.
constexpr GgmlTypeRow kGgmlTypes[] = {
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},      {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 40}},
    {10, {"Q2_K", 256, 84}},    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},   {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},   {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},        {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
    {40, {"NVFP4", 64, 36}},    {41, {"Q1_0", 128, 18}},
};

// ---- helpers ------------------------------------------------------------------------------------

// a * b and a + b, or nullopt when they overflow 64 bits.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// `s` with every byte outside printable ASCII written as \xNN, for names that failed a check;
// past `max_bytes` bytes it is cut short with "... (N bytes)".
std::string escaped(std::string_view s, size_t max_bytes = 64) {
  constexpr const char* kDigits = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u < 0x7F && u != '\\') {
      out += ch;
    } else {
      out += {'\\', 'x', kDigits[u >> 4], kDigits[u & 0xF]};
    }
  }
  if (s.size() > max_bytes) out += str_cat("... (", s.size(), " bytes)");
  return out;
}

std::string dims_str(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += str_cat(i ? ", " : "", dims[i]);
  return s + "]";
}

bool is_known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufValueType::kF64);
}

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kU16:
    case GgufValueType::kI16:
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kU64:
    case GgufValueType::kI64: return true;
    case GgufValueType::kF32:
    case GgufValueType::kBool:
    case GgufValueType::kString:
    case GgufValueType::kArray:
    case GgufValueType::kF64: return false;
  }
  return false;
}

bool is_float(GgufValueType t) {
  return t == GgufValueType::kF32 || t == GgufValueType::kF64;
}

// Fewest bytes one value of type `t` takes in the file.
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16: return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32: return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
    case GgufValueType::kString: return 8;  // the u64 length of an empty string
    case GgufValueType::kArray: return 12;  // u32 element type + u64 count of an empty array
  }
  return 1;
}

// "u32", or "array of string" for an array.
std::string kind_of(const GgufValue& v) {
  if (v.type != GgufValueType::kArray) return std::string(gguf_value_type_name(v.type));
  return str_cat("array of ", gguf_value_type_name(v.elem_type));
}

// A bounds-checked cursor over the mapping. Every read names what it reads when the file ends.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  // Throws "<path>: <where>: file truncated: <what> needs n bytes at offset p, only m left".
  template <class Where>
  void need(uint64_t n, const Where& where, std::string_view what) const {
    if (n <= left()) return;
    fail(path_, ": ", where(), ": file truncated: ", what, " needs ", n, " bytes at offset ", pos_, ", only ", left(),
         " left (file is ", size_, " bytes)");
  }

  template <class T, class Where>
  T read(const Where& where, std::string_view what) {
    need(sizeof(T), where, what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A u64 length and that many bytes; the length is checked against the bytes left.
  template <class Where>
  std::string_view read_string(const Where& where, std::string_view what) {
    const auto len = read<uint64_t>(where, what);
    if (len > left()) {
      fail(path_, ": ", where(), ": ", what, " length ", len, " at offset ", pos_ - 8,
           " runs past the end of the file (", left(), " bytes left)");
    }
    const std::string_view s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

// Reads the metadata values of one key. `where_` is "metadata key 'k'"; `index_` the element
// index at each array depth, formatted only when a message needs it ("metadata key 'k'[3][0]").
class ValueReader {
 public:
  ValueReader(Cursor& cur, const std::string& path, const std::string& key) : cur_(cur), path_(path), key_(key) {}

  GgufValue read(GgufValueType t) { return read_value(t, 0); }

  // `depth`: how many arrays enclose the value.

 private:
  std::string where() const {
    std::string s = str_cat("metadata key '", key_, "'");
    for (const uint64_t i : index_) s += str_cat("[", i, "]");
    return s;
  }

  template <class T>
  T get(std::string_view what) {
    return cur_.read<T>([this] { return where(); }, what);
  }

  GgufValue read_value(GgufValueType t, int depth) {
    GgufValue v;
    v.type = t;
    switch (t) {
      case GgufValueType::kU8: v.v = uint64_t{get<uint8_t>("u8 value")}; break;
      case GgufValueType::kI8: v.v = int64_t{get<int8_t>("i8 value")}; break;
      case GgufValueType::kU16: v.v = uint64_t{get<uint16_t>("u16 value")}; break;
      case GgufValueType::kI16: v.v = int64_t{get<int16_t>("i16 value")}; break;
      case GgufValueType::kU32: v.v = uint64_t{get<uint32_t>("u32 value")}; break;
      case GgufValueType::kI32: v.v = int64_t{get<int32_t>("i32 value")}; break;
      case GgufValueType::kU64: v.v = get<uint64_t>("u64 value"); break;
      case GgufValueType::kI64: v.v = get<int64_t>("i64 value"); break;
      case GgufValueType::kF32: v.v = double{get<float>("f32 value")}; break;
      case GgufValueType::kF64: v.v = get<double>("f64 value"); break;
      case GgufValueType::kBool: {
        const auto b = get<uint8_t>("bool value");
        MOE_CHECK(b <= 1, path_, ": ", where(), ": bool value is ", unsigned{b}, " at offset ", cur_.pos() - 1,
                  ", expected 0 or 1");
        v.v = b == 1;
        break;
      }
      case GgufValueType::kString: v.v = std::string(cur_.read_string([this] { return where(); }, "string")); break;
      case GgufValueType::kArray: read_array(v, depth); break;
    }
    return v;
  }

  void read_array(GgufValue& v, int depth) {
    MOE_CHECK(depth < kMaxArrayDepth, path_, ": ", where(), ": arrays nested more than ", kMaxArrayDepth, " deep");
    const auto raw = get<uint32_t>("array element type");
    MOE_CHECK(is_known_value_type(raw), path_, ": ", where(), ": unknown array element type ", raw, " at offset ",
              cur_.pos() - 4, " (known: 0..12)");
    v.elem_type = static_cast<GgufValueType>(raw);
    const auto count = get<uint64_t>("array count");
    const uint64_t min_bytes = min_value_bytes(v.elem_type);
    // Checked before reserving: `count` elements take at least count * min_bytes bytes.
    MOE_CHECK(count <= cur_.left() / min_bytes, path_, ": ", where(), ": array count ", count, " of ",
              gguf_value_type_name(v.elem_type), " (at least ", min_bytes, min_bytes == 1 ? " byte" : " bytes",
              " each) is larger than the ", cur_.left(), " bytes left in the file could hold");
    std::vector<GgufValue> elems;
    elems.reserve(count);
    index_.push_back(0);
    for (uint64_t i = 0; i < count; ++i) {
      index_.back() = i;
      elems.push_back(read_value(v.elem_type, depth + 1));
    }
    index_.pop_back();
    v.v = std::move(elems);
  }

  Cursor& cur_;
  const std::string& path_;
  const std::string& key_;
  std::vector<uint64_t> index_;
};

// Checks a key or tensor name read at `offset`; `what` is "metadata key" or "tensor name".
void check_name(std::string_view name, const std::string& path, std::string_view what, uint64_t index,
                uint64_t offset) {
  MOE_CHECK(!name.empty(), path, ": ", what, " #", index, " at offset ", offset, " is empty");
  const size_t bad = find_invalid_utf8(name);
  MOE_CHECK(bad == std::string_view::npos, path, ": ", what, " #", index, " at offset ", offset, " '", escaped(name),
            "' is not valid UTF-8 (bad byte at position ", bad, ")");
}

uint32_t read_alignment(const std::map<std::string, GgufValue, std::less<>>& metadata, const std::string& path) {
  const auto it = metadata.find(kAlignmentKey);
  if (it == metadata.end()) return kDefaultAlignment;
  const GgufValue& v = it->second;
  MOE_CHECK(v.type == GgufValueType::kU32, path, ": metadata key '", kAlignmentKey, "': must be a u32, found ",
            kind_of(v));
  const uint64_t a = std::get<uint64_t>(v.v);
  MOE_CHECK(std::has_single_bit(a), path, ": metadata key '", kAlignmentKey, "': alignment ", a,
            " is not a power of two");
  return static_cast<uint32_t>(a);
}

// One tensor info, checked on its own (offsets against the data section are checked later).
GgufTensorInfo read_tensor_info(Cursor& cur, const std::string& path, uint64_t index) {
  GgufTensorInfo t;
  const uint64_t start = cur.pos();
  const auto anon = [&] { return str_cat("tensor #", index, " at offset ", start); };
  t.name = std::string(cur.read_string(anon, "tensor name"));
  check_name(t.name, path, "tensor name", index, start);
  const std::string where = str_cat(path, ": tensor '", t.name, "'");
  const auto named = [&] { return str_cat("tensor '", t.name, "'"); };

  const auto n_dims = cur.read<uint32_t>(named, "n_dims");
  MOE_CHECK(n_dims >= 1 && n_dims <= kMaxDims, where, ": n_dims is ", n_dims, ", expected 1..", kMaxDims);
  cur.need(uint64_t{8} * n_dims, named, "dims");
  t.dims.resize(n_dims);
  for (auto& d : t.dims) d = cur.read<uint64_t>(named, "dim");
  uint64_t numel = 1;
  for (size_t i = 0; i < t.dims.size(); ++i) {
    MOE_CHECK(t.dims[i] != 0, where, ": dims ", dims_str(t.dims), ": dim ", i, " is 0");
    const auto n = checked_mul(numel, t.dims[i]);
    MOE_CHECK(n && *n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": dims ", dims_str(t.dims),
              " have too many elements (overflow)");
    numel = *n;
  }

  t.ggml_type = cur.read<uint32_t>(named, "ggml type");
  const auto info = ggml_type_info(t.ggml_type);
  MOE_CHECK(info.has_value(), where, ": unknown ggml type ", t.ggml_type);
  const auto block = static_cast<uint64_t>(info->block_elems);
  MOE_CHECK(t.dims[0] % block == 0, where, ": dims ", dims_str(t.dims), ": dims[0] = ", t.dims[0],
            " is not a multiple of the ", info->name, " block of ", block, " elements");
  std::optional<uint64_t> nbytes = checked_mul(t.dims[0] / block, info->block_bytes);
  for (size_t i = 1; i < t.dims.size() && nbytes; ++i) nbytes = checked_mul(*nbytes, t.dims[i]);
  MOE_CHECK(nbytes.has_value(), where, ": dims ", dims_str(t.dims), " of ", info->name,
            " take too many bytes (overflow)");
  t.nbytes = *nbytes;
  t.offset = cur.read<uint64_t>(named, "offset");
  return t;
}

// Each tensor's data lies inside the file, at a multiple of the alignment, and overlaps no other.
void check_tensor_data(const std::vector<GgufTensorInfo>& tensors, uint64_t data_offset, uint32_t alignment,
                       uint64_t file_size, const std::string& path) {
  for (const auto& t : tensors) {
    const std::string where = str_cat(path, ": tensor '", t.name, "'");
    MOE_CHECK(t.offset % alignment == 0, where, ": offset ", t.offset, " is not a multiple of the alignment ",
              alignment);
    const auto end = checked_add(t.offset, t.nbytes);
    const auto file_end = end ? checked_add(data_offset, *end) : std::nullopt;
    MOE_CHECK(file_end && *file_end <= file_size, where, ": data [", t.offset, ", ", t.offset, " + ", t.nbytes,
              ") from the data section at ", data_offset, " runs past the end of the file (", file_size, " bytes)");
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = tensors[order[k - 1]];
    const GgufTensorInfo& t = tensors[order[k]];
    MOE_CHECK(t.offset >= prev.offset + prev.nbytes, path, ": tensor '", t.name, "': data [", t.offset, ", ",
              t.offset + t.nbytes, ") overlaps tensor '", prev.name, "' at [", prev.offset, ", ",
              prev.offset + prev.nbytes, ")");
  }
}

// "0x0000ABCD"
std::string hex32(uint32_t v) {
  constexpr const char* kDigits = "0123456789ABCDEF";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += kDigits[(v >> shift) & 0xF];
  return s;
}

// "\"GGUX\" (47 47 55 58)"
std::string magic_str(const uint8_t* p) {
  constexpr const char* kDigits = "0123456789ABCDEF";
  std::string hex;
  for (int i = 0; i < 4; ++i) hex += {i ? ' ' : '(', kDigits[p[i] >> 4], kDigits[p[i] & 0xF]};
  return str_cat("\"", escaped(std::string_view(reinterpret_cast<const char*>(p), 4)), "\" ", hex, ")");
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8: return "u8";
    case GgufValueType::kI8: return "i8";
    case GgufValueType::kU16: return "u16";
    case GgufValueType::kI16: return "i16";
    case GgufValueType::kU32: return "u32";
    case GgufValueType::kI32: return "i32";
    case GgufValueType::kF32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kU64: return "u64";
    case GgufValueType::kI64: return "i64";
    case GgufValueType::kF64: return "f64";
  }
  return "unknown";
}

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t ggml_type) {
  for (const auto& row : kGgmlTypes)
    if (row.id == ggml_type) return row.info;
  return std::nullopt;
}

// ---- GgufFile -----------------------------------------------------------------------------------

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile g;
  g.file_ = MappedFile::open(path);
  const std::string where = path.string();
  const uint64_t size = g.file_.size();
  const uint8_t* data = g.file_.data();
  MOE_CHECK(size >= kMagic.size(), where, ": file is ", size, " bytes, too short for a GGUF header (",
            kFixedHeaderBytes, " bytes)");
  MOE_CHECK(std::equal(kMagic.begin(), kMagic.end(), data), where, ": not a GGUF file: magic is ", magic_str(data),
            ", expected \"GGUF\"");
  MOE_CHECK(size >= kFixedHeaderBytes, where, ": file is ", size, " bytes, too short for a GGUF header (",
            kFixedHeaderBytes, " bytes)");

  Cursor cur(data, size, where);
  const auto top = [] { return std::string("header"); };
  cur.read<uint32_t>(top, "magic");
  g.version_ = cur.read<uint32_t>(top, "version");
  const uint32_t swapped = __builtin_bswap32(g.version_);
  MOE_CHECK(g.version_ == 0 || (g.version_ & 0xFFFFu) != 0, where, ": version field is ", hex32(g.version_), " (",
            swapped, " byte-swapped): a big-endian GGUF file; only little-endian files are supported");
  MOE_CHECK(g.version_ != 1, where,
            ": GGUF version 1 is not supported (only versions 2 and 3; version 1 used 32-bit counts and lengths)");
  MOE_CHECK(g.version_ == 2 || g.version_ == 3, where, ": unsupported GGUF version ", g.version_,
            " (supported: 2 and 3)");
  const auto n_tensors = cur.read<uint64_t>(top, "tensor count");
  const auto n_kv = cur.read<uint64_t>(top, "kv count");
  MOE_CHECK(n_kv <= cur.left() / kMinKvBytes, where, ": kv count ", n_kv, " is larger than the file could hold (",
            cur.left(), " bytes after the header, at least ", kMinKvBytes, " per key/value)");
  MOE_CHECK(n_tensors <= cur.left() / kMinTensorInfoBytes, where, ": tensor count ", n_tensors,
            " is larger than the file could hold (", cur.left(), " bytes after the header, at least ",
            kMinTensorInfoBytes, " per tensor info)");

  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t start = cur.pos();
    const auto anon = [&] { return str_cat("metadata key #", i, " at offset ", start); };
    std::string key(cur.read_string(anon, "key"));
    check_name(key, where, "metadata key", i, start);
    MOE_CHECK(!g.metadata_.contains(key), where, ": metadata key '", key, "' is repeated (second at offset ", start,
              ")");
    const auto named = [&] { return str_cat("metadata key '", key, "'"); };
    const auto raw = cur.read<uint32_t>(named, "value type");
    MOE_CHECK(is_known_value_type(raw), where, ": metadata key '", key, "': unknown value type ", raw, " at offset ",
              cur.pos() - 4, " (known: 0..12)");
    GgufValue v = ValueReader(cur, where, key).read(static_cast<GgufValueType>(raw));
    g.metadata_.emplace(std::move(key), std::move(v));
  }
  g.alignment_ = read_alignment(g.metadata_, where);

  g.tensors_.reserve(n_tensors);  // bounded above by the file size
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t start = cur.pos();
    GgufTensorInfo t = read_tensor_info(cur, where, i);
    MOE_CHECK(!g.tensor_index_.contains(t.name), where, ": tensor '", t.name, "' is repeated (second at offset ", start,
              ")");
    g.tensor_index_.emplace(t.name, g.tensors_.size());
    g.tensors_.push_back(std::move(t));
  }

  const uint64_t header_end = cur.pos();
  const auto padded = checked_add(header_end, g.alignment_ - 1);
  MOE_CHECK(padded.has_value(), where, ": header end ", header_end, " overflows when padded");
  g.data_offset_ = *padded / g.alignment_ * g.alignment_;
  check_tensor_data(g.tensors_, g.data_offset_, g.alignment_, size, where);
  return g;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  const uint64_t size = file_.size();
  MOE_CHECK(data_offset_ <= size && t.offset <= size - data_offset_ && t.nbytes <= size - data_offset_ - t.offset,
            path().string(), ": tensor '", t.name, "': data [", t.offset, ", ", t.offset, " + ", t.nbytes,
            ") lies outside the data section (is this tensor info from another file?)");
  return file_.data() + data_offset_ + t.offset;
}

// ---- typed accessors ----------------------------------------------------------------------------

namespace {

// "<file>: metadata key '<key>'"
std::string key_where(const std::filesystem::path& path, std::string_view key) {
  return str_cat(path.string(), ": metadata key '", key, "'");
}

const GgufValue& require(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  MOE_CHECK(v != nullptr, key_where(f.path(), key), ": not found");
  return *v;
}

// An integer value as uint64_t / int64_t; throws "<where>: ..." when it is not an integer or its
// value does not fit.
uint64_t as_u64(const GgufValue& v, GgufValueType type, const std::string& where) {
  MOE_CHECK(is_integer(type), where, ": expected an integer, found ", kind_of(v));
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
  const int64_t i = std::get<int64_t>(v.v);
  MOE_CHECK(i >= 0, where, ": ", gguf_value_type_name(type), " value ", i,
            " is negative, expected an unsigned integer");
  return static_cast<uint64_t>(i);
}

int64_t as_i64(const GgufValue& v, GgufValueType type, const std::string& where) {
  MOE_CHECK(is_integer(type), where, ": expected an integer, found ", kind_of(v));
  if (const auto* i = std::get_if<int64_t>(&v.v)) return *i;
  const uint64_t u = std::get<uint64_t>(v.v);
  MOE_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": ", gguf_value_type_name(type),
            " value ", u, " does not fit an i64");
  return static_cast<int64_t>(u);
}

double as_f64(const GgufValue& v, const std::string& where) {
  MOE_CHECK(is_float(v.type), where, ": expected f32 or f64, found ", kind_of(v));
  return std::get<double>(v.v);
}

const std::vector<GgufValue>& as_array(const GgufValue& v, const std::string& where, std::string_view expected) {
  MOE_CHECK(v.type == GgufValueType::kArray, where, ": expected an array of ", expected, ", found ", kind_of(v));
  return std::get<std::vector<GgufValue>>(v.v);
}

}  // namespace

uint64_t GgufFile::get_u64(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  return as_u64(v, v.type, key_where(path(), key));
}
std::optional<uint64_t> GgufFile::opt_u64(std::string_view key) const {
  if (!contains(key)) return std::nullopt;
  return get_u64(key);
}

int64_t GgufFile::get_i64(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  return as_i64(v, v.type, key_where(path(), key));
}
std::optional<int64_t> GgufFile::opt_i64(std::string_view key) const {
  if (!contains(key)) return std::nullopt;
  return get_i64(key);
}

double GgufFile::get_f64(std::string_view key) const {
  return as_f64(require(*this, key), key_where(path(), key));
}
std::optional<double> GgufFile::opt_f64(std::string_view key) const {
  if (!contains(key)) return std::nullopt;
  return get_f64(key);
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  MOE_CHECK(v.type == GgufValueType::kBool, key_where(path(), key), ": expected bool, found ", kind_of(v));
  return std::get<bool>(v.v);
}
std::optional<bool> GgufFile::opt_bool(std::string_view key) const {
  if (!contains(key)) return std::nullopt;
  return get_bool(key);
}

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  MOE_CHECK(v.type == GgufValueType::kString, key_where(path(), key), ": expected string, found ", kind_of(v));
  return std::get<std::string>(v.v);
}
std::optional<std::string> GgufFile::opt_string(std::string_view key) const {
  if (!contains(key)) return std::nullopt;
  return get_string(key);
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  const std::string where = key_where(path(), key);
  const auto& elems = as_array(v, where, "string");
  MOE_CHECK(v.elem_type == GgufValueType::kString, where, ": expected an array of string, found ", kind_of(v));
  std::vector<std::string> out;
  out.reserve(elems.size());
  for (const auto& e : elems) out.push_back(std::get<std::string>(e.v));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  const std::string where = key_where(path(), key);
  const auto& elems = as_array(v, where, "integers");
  MOE_CHECK(is_integer(v.elem_type), where, ": expected an array of integers, found ", kind_of(v));
  std::vector<int64_t> out;
  out.reserve(elems.size());
  for (size_t i = 0; i < elems.size(); ++i) {
    if (const auto* u = std::get_if<uint64_t>(&elems[i].v)) {
      MOE_CHECK(*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": element ", i, ": ",
                gguf_value_type_name(v.elem_type), " value ", *u, " does not fit an i64");
      out.push_back(static_cast<int64_t>(*u));
    } else {
      out.push_back(std::get<int64_t>(elems[i].v));
    }
  }
  return out;
}

std::vector<double> GgufFile::get_f64_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  const std::string where = key_where(path(), key);
  const auto& elems = as_array(v, where, "f32 or f64");
  MOE_CHECK(is_float(v.elem_type), where, ": expected an array of f32 or f64, found ", kind_of(v));
  std::vector<double> out;
  out.reserve(elems.size());
  for (const auto& e : elems) out.push_back(std::get<double>(e.v));
  return out;
}

// ---- sniffing -----------------------------------------------------------------------------------

bool is_gguf_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  if (!in.read(magic.data(), magic.size())) return false;
  return std::equal(magic.begin(), magic.end(), kMagic.begin(),
                    [](char a, uint8_t b) { return static_cast<unsigned char>(a) == b; });
}

}  // namespace moe
