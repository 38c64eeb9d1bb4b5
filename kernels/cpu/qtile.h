// Row tiles: the CPU kernels' in-memory layout of quantized weights (QuantLayout::kTile16), and
// the projection over it.
//
// Why: in the block layout (quant_format.h) each row is its own stream of blocks, so a decode
// kernel spends most of its instructions per block on one row's scale, zero and horizontal sum.
// Interleaving 16 rows makes every instruction serve 16 rows: a 64-byte load holds 4 (q8), 8 (q4)
// or 16 (q2) consecutive codes of each of the 16 rows, so one VNNI dpbusd (or AVX2 maddubs + madd) with
// the 4 matching activation bytes broadcast advances all 16 dot products, and the scales and
// zeros of one block of 16 rows are one 32-byte load each.
//
// Layout of a run of 16 rows (n0 = 16 t, K / g blocks per row): for each block b, 16 x
// quant_block_bytes bytes:
//   [16 fp16 scales: row n0 .. n0 + 15][16 fp16 zeros][codes]
//   q4 codes: g / 8 chunks of 64 bytes; chunk c, byte 4 r + j (r = 0..15, j = 0..3) holds code
//             8c + j of row n0 + r in bits 0-3 and code 8c + 4 + j in bits 4-7
//   q8 codes: g / 4 chunks of 64 bytes; chunk c, byte 4 r + j holds code 4c + j of row n0 + r
//   q2 codes: g / 16 chunks of 64 bytes; chunk c, byte 4 r + j holds code 16c + 4s + j of row
//             n0 + r in bits 2s, 2s + 1 (s = 0..3)
//   q3 codes (g >= 32): the low two bits of every code laid out as q2 (4g bytes), then the high
//             bits: g / 32 chunks of 64 bytes; chunk c, byte 4 r + j, bit b holds bit 2 of code
//             32c + 4b + j of row n0 + r
// The run takes exactly the bytes of its 16 rows in the block layout, so it starts at the same
// offset; rows past the last full run of 16 keep the block layout.
//
// Arithmetic (every ISA, tiles and leftover rows alike, so results are bit-identical across
// ISAs, T and thread counts): each token row of x is quantized per group of g to int8 (xq, scale
// sx, and xs = sx * sum of the group's xq: the integer path of qlinear_isa.h); then per row, over
// the blocks b in order,
//   tot  = fma(s_b * sx_b, float(sum_j code_j xq_j), tot)     (the code dot in exact int32)
//   corr = fma(s_b * z_b, xs_b, corr)
// and y = (tot - corr) + bias.
#pragma once

#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe::cpu {

inline constexpr int kQTileRows = 16;

// Whether format f has a kTile16 layout (every format and group size but q3 g16).
bool qtile_has_layout(QuantFormat f);
// Whether weights of format f should be rearranged into kTile16 for the CPU kernels on this
// machine now: a vector tile kernel exists for f on the current ISA (qlinear_isa.h) and the f32
// path is not forced. Otherwise the block layout's kernels are as fast or faster.
bool qtile_preferred(QuantFormat f);

// src (N rows of K weights in the block layout) -> dst in kTile16 (same byte count; dst must not
// overlap src). Needs qtile_has_layout(f) and K % f.group_size == 0.
void qtile_pack(const uint8_t* src, QuantFormat f, int64_t N, int64_t K, uint8_t* dst);
// The same in place (uses a 16-row scratch buffer).
void qtile_pack_in_place(uint8_t* w, QuantFormat f, int64_t N, int64_t K);
// The inverse of qtile_pack: kTile16 -> block layout.
void qtile_unpack(const uint8_t* src, QuantFormat f, int64_t N, int64_t K, uint8_t* dst);
// Row n of a kTile16 weight dequantized to f32 (K values): what dequantize_rows gives for the
// block layout.
void qtile_dequantize_row(const uint8_t* w, QuantFormat f, int64_t N, int64_t K, int64_t n, float* out);

// The scalar kernels (the portable path, and the reference the vector kernels must match bit for
// bit). Both take x already quantized for group size g = f.group_size: xq (T rows of K int8), sx
// and xs (T rows of nb = K / g floats); y[t * ldy + r] for token t.
//   qtile_dot_scalar: one run of 16 rows in kTile16 (tile: its first byte), r = 0..15.
//   qrow_dot_exact:   one row in the block layout (rows past the last full run), r = 0.
void qtile_dot_scalar(const uint8_t* tile, QuantFormat f, int64_t nb, const int8_t* xq, const float* sx,
                      const float* xs, int64_t T, int64_t K, float* y, int64_t ldy);
void qrow_dot_exact(const uint8_t* row, QuantFormat f, int64_t nb, const int8_t* xq, const float* sx, const float* xs,
                    int64_t T, int64_t K, float* y, int64_t ldy);

}  // namespace moe::cpu
