// Element types of stored tensors and the scalar conversions between them.
// Pure compute: no I/O, no ownership. Used by kernels/ and everything above it.
#pragma once

#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace moe {

// Every dtype a safetensors header may name. Only F32, F16 and BF16 are computed on today;
// the others are known so that files holding them are validated, and rejected by name.
enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2,
  kF8E8M0,
  kF4,
};

// Storage size in bits of one element (F4 is 4, BOOL is 8 as safetensors stores it).
int dtype_bits(DType t);
// The safetensors spelling: "F32", "BF16", "F8_E4M3", ...
std::string_view dtype_name(DType t);
// Inverse of dtype_name; nullopt for a string no safetensors writer emits.
std::optional<DType> dtype_from_name(std::string_view name);
// True for the weight dtypes the compute kernels read directly (F32, F16, BF16).
bool dtype_is_compute(DType t);

// The dtypes the kernels compute over, as their own enum so that kernels switch over three
// cases instead of every stored dtype.
enum class ComputeType : uint8_t { kF32, kF16, kBF16 };
// Precondition: dtype_is_compute(t) (kernels assert it; callers validate first). Inline: it is
// called once per weight row on the decode path.
inline ComputeType compute_type(DType t) {
  switch (t) {
    case DType::kF32: return ComputeType::kF32;
    case DType::kF16: return ComputeType::kF16;
    case DType::kBF16: return ComputeType::kBF16;
    case DType::kF64:
    case DType::kBool:
    case DType::kU8:
    case DType::kI8:
    case DType::kI16:
    case DType::kU16:
    case DType::kI32:
    case DType::kU32:
    case DType::kI64:
    case DType::kU64:
    case DType::kF8E4M3:
    case DType::kF8E5M2:
    case DType::kF8E8M0:
    case DType::kF4: break;
  }
  assert(false && "compute_type: not a compute dtype");
  return ComputeType::kF32;
}

inline float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// Round to nearest even, as torch does when casting float32 -> bfloat16. NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half <-> float, exact for every half value (subnormals included).
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      const float v = static_cast<float>(mant) * 0x1p-24f;
      bits = sign | std::bit_cast<uint32_t>(v);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// Round to nearest even; overflow goes to infinity, as torch's float -> half cast does.
uint16_t f32_to_f16(float f);

// Reads element i of a row stored as `t` (F32/F16/BF16 only) as float.
inline float load_as_f32(const void* data, DType t, int64_t i) {
  switch (compute_type(t)) {
    case ComputeType::kF32: return static_cast<const float*>(data)[i];
    case ComputeType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case ComputeType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
  }
  return 0.0f;  // unreachable: the switch covers every ComputeType
}

// A read-only weight operand for the kernels: row-major elements of one compute dtype.
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::kF32;
};

}  // namespace moe
