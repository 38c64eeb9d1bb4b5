// Test helper: GGUF files built field by field (little-endian), so that every valid and every
// malformed case of runtime/io/gguf.h can be written. Nothing here validates: a spec is written
// exactly as given (counts, lengths, types and offsets can all lie).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/io/st_builder.h"

namespace moe::test {

// ---- little-endian encoders ---------------------------------------------------------------------

template <class T>
std::string le(T v) {
  static_assert(std::endian::native == std::endian::little);
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
inline std::string le_u32(uint32_t v) {
  return le(v);
}
// A GGUF string: u64 length, then the bytes.
inline std::string gguf_str(std::string_view s) {
  return le(uint64_t{s.size()}) + std::string(s);
}

// GGUF value type ids (as in the file; runtime/io/gguf.h GgufValueType).
enum GgufT : uint32_t {
  kGU8 = 0,
  kGI8 = 1,
  kGU16 = 2,
  kGI16 = 3,
  kGU32 = 4,
  kGI32 = 5,
  kGF32 = 6,
  kGBool = 7,
  kGString = 8,
  kGArray = 9,
  kGU64 = 10,
  kGI64 = 11,
  kGF64 = 12,
};

// One key/value: the key, the u32 type and the value's bytes (for an array: element type,
// count, elements).
struct GgufKv {
  std::string key;
  uint32_t type = kGU32;
  std::string value;
};

inline GgufKv kv_u8(std::string key, uint8_t v) {
  return {std::move(key), kGU8, le(v)};
}
inline GgufKv kv_i8(std::string key, int8_t v) {
  return {std::move(key), kGI8, le(v)};
}
inline GgufKv kv_u16(std::string key, uint16_t v) {
  return {std::move(key), kGU16, le(v)};
}
inline GgufKv kv_i16(std::string key, int16_t v) {
  return {std::move(key), kGI16, le(v)};
}
inline GgufKv kv_u32(std::string key, uint32_t v) {
  return {std::move(key), kGU32, le(v)};
}
inline GgufKv kv_i32(std::string key, int32_t v) {
  return {std::move(key), kGI32, le(v)};
}
inline GgufKv kv_u64(std::string key, uint64_t v) {
  return {std::move(key), kGU64, le(v)};
}
inline GgufKv kv_i64(std::string key, int64_t v) {
  return {std::move(key), kGI64, le(v)};
}
inline GgufKv kv_f32(std::string key, float v) {
  return {std::move(key), kGF32, le(v)};
}
inline GgufKv kv_f64(std::string key, double v) {
  return {std::move(key), kGF64, le(v)};
}
inline GgufKv kv_bool(std::string key, bool v) {
  return {std::move(key), kGBool, std::string(1, v ? '\1' : '\0')};
}
inline GgufKv kv_str(std::string key, std::string_view v) {
  return {std::move(key), kGString, gguf_str(v)};
}

// The bytes of an array value: element type, `count` (which may lie) and the encoded elements.
inline std::string arr_bytes(uint32_t elem_type, uint64_t count, std::string_view elems) {
  return le(elem_type) + le(count) + std::string(elems);
}
inline std::string arr_bytes(uint32_t elem_type, const std::vector<std::string>& elems) {
  std::string body;
  for (const auto& e : elems) body += e;
  return arr_bytes(elem_type, elems.size(), body);
}
inline GgufKv kv_arr(std::string key, uint32_t elem_type, const std::vector<std::string>& elems) {
  return {std::move(key), kGArray, arr_bytes(elem_type, elems)};
}
inline GgufKv kv_str_arr(std::string key, const std::vector<std::string>& strs) {
  std::vector<std::string> elems;
  for (const auto& s : strs) elems.push_back(gguf_str(s));
  return kv_arr(std::move(key), kGString, elems);
}

// One tensor info as written: dims innermost first, offset from the data section.
struct GgufTi {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;
  std::optional<uint32_t> n_dims;  // written instead of dims.size() when set
};

struct GgufSpec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count;  // written instead of tensors.size() when set
  std::optional<uint64_t> kv_count;      // written instead of kvs.size() when set
  std::vector<GgufKv> kvs;
  std::vector<GgufTi> tensors;
  uint64_t alignment = 32;  // zero padding written after the tensor infos
  std::string data;         // the data section, after the padding

  // Appends `bytes` to the data section at the next multiple of `alignment` and a tensor info
  // pointing at them.
  void add_tensor(std::string name, std::vector<uint64_t> dims, uint32_t type, std::string_view bytes) {
    while (data.size() % alignment != 0) data.push_back('\0');
    tensors.push_back({std::move(name), std::move(dims), type, data.size(), std::nullopt});
    data += bytes;
  }
  // An F32 tensor holding `values` (dims innermost first).
  void add_f32(std::string name, std::vector<uint64_t> dims, const std::vector<float>& values) {
    std::string bytes;
    for (const float v : values) bytes += le(v);
    add_tensor(std::move(name), std::move(dims), 0, bytes);
  }
};

// Everything up to the end of the tensor infos (no padding).
inline std::string gguf_header_bytes(const GgufSpec& s) {
  std::string out = s.magic;
  out += le(s.version);
  out += le(s.tensor_count.value_or(s.tensors.size()));
  out += le(s.kv_count.value_or(s.kvs.size()));
  for (const auto& kv : s.kvs) out += gguf_str(kv.key) + le(kv.type) + kv.value;
  for (const auto& t : s.tensors) {
    out += gguf_str(t.name);
    out += le(t.n_dims.value_or(static_cast<uint32_t>(t.dims.size())));
    for (const uint64_t d : t.dims) out += le(d);
    out += le(t.type) + le(t.offset);
  }
  return out;
}

// The whole file: header, zero padding to `alignment`, data.
inline std::string gguf_bytes(const GgufSpec& s) {
  std::string out = gguf_header_bytes(s);
  while (out.size() % s.alignment != 0) out.push_back('\0');
  return out + s.data;
}

inline void write_gguf(const std::filesystem::path& path, const GgufSpec& s) {
  write_bytes(path, gguf_bytes(s));
}

}  // namespace moe::test
