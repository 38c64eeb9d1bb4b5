// GGUF reader (ggml's single-file format, versions 2 and 3; ../shared/REFERENCE.md "GGUF").
// Memory-mapped; the whole header (metadata key/values and tensor infos) is parsed and validated
// before any tensor is touched, and every failure names the file, the key or tensor and what is
// wrong. Nothing is read out of bounds, and no size field makes it allocate more than the file
// could hold.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/io/mapped_file.h"
#include "runtime/io/tensor_view.h"

namespace moe {

// GGUF metadata value types (the u32 in the file).
enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType t);  // "u32", "string", "array", ...

// One metadata value. Scalars of every integer width are held as int64_t / uint64_t (their type
// kept in `type`); arrays hold their element type and their elements (arrays of arrays are
// valid GGUF and kept as such).
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  GgufValueType elem_type = GgufValueType::kU8;  // arrays only
  std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v;
};

// One tensor info. `ggml_type` is the type id in the file (F32 0, F16 1, Q4_0 2, ... BF16 30);
// dims as the file gives them, innermost first (an HF [out, in] weight has dims {in, out}).
struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // innermost first
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;  // from the type's block size and the dims
};

// One ggml tensor type as gguf-py's GGML_QUANT_SIZES describes it: its name as ggml spells it
// ("Q4_K") and its block, `block_elems` consecutive elements along dims[0] stored in
// `block_bytes` bytes (F32: 1 and 4; Q8_0: 32 and 34; Q4_K: 256 and 144).
struct GgmlTypeInfo {
  std::string_view name;
  int64_t block_elems = 1;
  uint64_t block_bytes = 0;
};
// Every type id ggml defines (0 F32 ... 30 BF16, 34 TQ1_0, 35 TQ2_0, 39 MXFP4, 40 NVFP4,
// 41 Q1_0); nullopt for any other id (4, 5, 31-33 and 36-38 were removed from ggml). Whether the
// engine can compute on a type is decided elsewhere: the reader only needs its size.
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t ggml_type);

class GgufFile {
 public:
  // Opens, maps and validates. Throws moe::Error (message starts with the file path) for: a file
  // too short for the header; a magic other than "GGUF"; a version other than 2 or 3; a tensor or
  // key count larger than the file could hold; a string longer than the bytes left; a key that is
  // empty, not UTF-8 or repeated; an unknown value type; an array whose count is larger than the
  // bytes left could hold; `general.alignment` that is not a u32 power of two; a tensor name that
  // is empty or repeated; n_dims 0 or > 4; a zero dim or an element count overflowing; an unknown
  // ggml type; a first dim that is not a multiple of the type's block size; an offset that is not
  // a multiple of the alignment; tensor data that overlaps another tensor's or runs past the end
  // of the file.
  static GgufFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // Offset of the data section from the start of the file.
  uint64_t data_offset() const { return data_offset_; }

  // Metadata, sorted by key (keys are unique).
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  bool contains(std::string_view key) const { return find(key) != nullptr; }

  // Typed accessors. Each throws moe::Error "<file>: metadata key '<key>': ..." naming the type
  // found when the value is absent (the non-optional forms) or of another kind. Integer
  // accessors accept any integer type whose value fits; f32 accepts f32 and f64.
  uint64_t get_u64(std::string_view key) const;
  std::optional<uint64_t> opt_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  std::optional<int64_t> opt_i64(std::string_view key) const;
  double get_f64(std::string_view key) const;
  std::optional<double> opt_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  std::optional<std::string> opt_string(std::string_view key) const;
  // Arrays: the element type must match (integers: any integer type; throws otherwise).
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<double> get_f64_array(std::string_view key) const;

  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  // Pointer to a tensor's bytes inside the mapping (valid while this object lives).
  const uint8_t* tensor_data(const GgufTensorInfo& t) const;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// True when `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::filesystem::path& path);

}  // namespace moe
