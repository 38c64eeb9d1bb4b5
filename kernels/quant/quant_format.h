// Group-wise affine quantization formats: the on-disk and in-memory layout shared by the
// quantizers (kernels/quant), the CPU kernels (kernels/cpu/qlinear) and, later, the CUDA
// kernels. A weight (N, K) is stored row by row; each row is K / group_size blocks; each block
// holds one group of `group_size` consecutive weights of that row:
//
//   [fp16 scale][fp16 zero][packed codes]          w[j] ~= (code[j] - zero) * scale
//
// codes are unsigned, 0 .. 2^bits - 1; zero is a real number in code units (HQQ keeps it
// unrounded). Packed codes of one block (g = group_size), little-endian bytes:
//   q8: g bytes; byte j = code j
//   q4: g/2 bytes; byte i = code i (bits 0-3) | code i + g/2 (bits 4-7)
//   q2: g/4 bytes; byte i = code i | code i + g/4 << 2 | code i + g/2 << 4 | code i + 3g/4 << 6
//   q3: the low two bits of every code laid out as q2 (g/4 bytes), then the high bits: g/8
//       bytes, bit b of byte i = bit 2 of code 8i + b
// Blocks are 2-byte aligned within a row when rows start 2-byte aligned (block sizes are even).
//
// The kGgml* types are ggml's block formats as GGUF files hold them (kernels/quant/ggml_quants.h
// has their layouts), kept as they are: group_size is then the type's block length (32, or 256
// for the K-quants and IQ4_XS) and a row is K / group_size of ggml's blocks. Our quantizers do not
// write them, and the kTile16 layout does not apply to them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moe {

enum class QuantType : uint8_t {
  kQ8,
  kQ4,
  kQ3,
  kQ2,
  kGgmlQ4_0,
  kGgmlQ4_1,
  kGgmlQ5_0,
  kGgmlQ5_1,
  kGgmlQ8_0,
  kGgmlQ2_K,
  kGgmlQ3_K,
  kGgmlQ4_K,
  kGgmlQ5_K,
  kGgmlQ6_K,
  kGgmlIQ4_XS,
};

// Every ggml QuantType as case labels, for the switches over our affine types that do not apply
// to them: `MOE_GGML_QUANT_CASES: break;`.
#define MOE_GGML_QUANT_CASES \
  case QuantType::kGgmlQ4_0: \
  case QuantType::kGgmlQ4_1: \
  case QuantType::kGgmlQ5_0: \
  case QuantType::kGgmlQ5_1: \
  case QuantType::kGgmlQ8_0: \
  case QuantType::kGgmlQ2_K: \
  case QuantType::kGgmlQ3_K: \
  case QuantType::kGgmlQ4_K: \
  case QuantType::kGgmlQ5_K: \
  case QuantType::kGgmlQ6_K: \
  case QuantType::kGgmlIQ4_XS

constexpr bool is_ggml(QuantType t) {
  return t >= QuantType::kGgmlQ4_0;
}
// A ggml type's block: elements and bytes (ggml-common.h). {0, 0} for our own types.
struct GgmlBlock {
  int32_t elems = 0;
  int32_t bytes = 0;
};
constexpr GgmlBlock ggml_block(QuantType t) {
  switch (t) {
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2: return {};
    case QuantType::kGgmlQ4_0: return {32, 18};
    case QuantType::kGgmlQ4_1: return {32, 20};
    case QuantType::kGgmlQ5_0: return {32, 22};
    case QuantType::kGgmlQ5_1: return {32, 24};
    case QuantType::kGgmlQ8_0: return {32, 34};
    case QuantType::kGgmlQ2_K: return {256, 84};
    case QuantType::kGgmlQ3_K: return {256, 110};
    case QuantType::kGgmlQ4_K: return {256, 144};
    case QuantType::kGgmlQ5_K: return {256, 176};
    case QuantType::kGgmlQ6_K: return {256, 210};
    case QuantType::kGgmlIQ4_XS: return {256, 136};
  }
  return {};
}

struct QuantFormat {
  QuantType type = QuantType::kQ4;
  int32_t group_size = 64;  // 16, 32, 64, 128 or 256; must divide the row length K

  bool operator==(const QuantFormat&) const = default;
};

// Bits of one code: of our affine types; of a ggml type, its nominal width (Q4_K 4, Q8_0 8).
constexpr int quant_bits(QuantType t) {
  switch (t) {
    case QuantType::kQ8: return 8;
    case QuantType::kQ4: return 4;
    case QuantType::kQ3: return 3;
    case QuantType::kQ2: return 2;
    case QuantType::kGgmlQ8_0: return 8;
    case QuantType::kGgmlQ6_K: return 6;
    case QuantType::kGgmlQ5_0:
    case QuantType::kGgmlQ5_1:
    case QuantType::kGgmlQ5_K: return 5;
    case QuantType::kGgmlQ4_0:
    case QuantType::kGgmlQ4_1:
    case QuantType::kGgmlQ4_K:
    case QuantType::kGgmlIQ4_XS: return 4;
    case QuantType::kGgmlQ3_K: return 3;
    case QuantType::kGgmlQ2_K: return 2;
  }
  return 0;
}

// Bytes of one block: 4 (scale, zero) + group_size * bits / 8; a ggml type's block size.
constexpr size_t quant_block_bytes(QuantFormat f) {
  switch (f.type) {
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2:
      break;
    MOE_GGML_QUANT_CASES:
      return static_cast<size_t>(ggml_block(f.type).bytes);
  }
  return 4 + static_cast<size_t>(f.group_size) * static_cast<size_t>(quant_bits(f.type)) / 8;
}
// Bytes of one row of K weights (K % group_size == 0).
constexpr size_t quant_row_bytes(QuantFormat f, int64_t K) {
  return static_cast<size_t>(K / f.group_size) * quant_block_bytes(f);
}
// Storage bits per weight including the block metadata, e.g. q4 g64 -> 4.5.
constexpr double quant_bits_per_weight(QuantFormat f) {
  return 8.0 * static_cast<double>(quant_block_bytes(f)) / f.group_size;
}

// How the rows of a quantized weight (N, K) sit in memory. kRows is the layout above, the one
// every file holds. kTile16 is the CPU kernels' in-memory layout (kernels/cpu/
// qtile.h): each run of 16 rows starting at a multiple of 16 is interleaved so that one 64-byte
// load feeds 16 rows at once; it occupies exactly the bytes of the same 16 rows in kRows, so row
// offsets that are multiples of 16 are the same in both, and rows past the last full run of 16
// stay in kRows.
enum class QuantLayout : uint8_t { kRows, kTile16 };

// "q4g64" (the spelling of recipes and manifests); parse accepts "q4" (group 64 by default,
// 16 for q2) and "q4g128"; nullopt for anything else or an unsupported group size. ggml types
// are spelled as ggml does, "Q4_K", "Q8_0", "IQ4_XS" (upper case: parse accepts those too).
std::string quant_format_name(QuantFormat f);
std::optional<QuantFormat> parse_quant_format(std::string_view s);

}  // namespace moe
