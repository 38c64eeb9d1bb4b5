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
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moe {

enum class QuantType : uint8_t { kQ8, kQ4, kQ3, kQ2 };

struct QuantFormat {
  QuantType type = QuantType::kQ4;
  int32_t group_size = 64;  // 16, 32, 64, 128 or 256; must divide the row length K

  bool operator==(const QuantFormat&) const = default;
};

constexpr int quant_bits(QuantType t) {
  switch (t) {
    case QuantType::kQ8: return 8;
    case QuantType::kQ4: return 4;
    case QuantType::kQ3: return 3;
    case QuantType::kQ2: return 2;
  }
  return 0;
}

// Bytes of one block: 4 (scale, zero) + group_size * bits / 8.
constexpr size_t quant_block_bytes(QuantFormat f) {
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
// 16 for q2) and "q4g128"; nullopt for anything else or an unsupported group size.
std::string quant_format_name(QuantFormat f);
std::optional<QuantFormat> parse_quant_format(std::string_view s);

}  // namespace moe
