// kTile16 layout conversion and the scalar kTile16 kernels (contracts in qtile.h). The vector
// kernels are in qtile_isa.h, dispatched by qlinear.cpp.
#include "kernels/cpu/qtile.h"

#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/common/thread_pool.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/quantize.h"

namespace moe::cpu {
namespace {

// Code j of a block's packed codes in the block layout (quant_format.h).
inline uint32_t row_code(const uint8_t* codes, QuantType t, int g, int j) {
  switch (t) {
    case QuantType::kQ8: return codes[j];
    case QuantType::kQ4: return (static_cast<uint32_t>(codes[j % (g / 2)]) >> (4 * (j / (g / 2)))) & 15u;
    case QuantType::kQ2: return (static_cast<uint32_t>(codes[j % (g / 4)]) >> (2 * (j / (g / 4)))) & 3u;
    case QuantType::kQ3:
      return ((static_cast<uint32_t>(codes[j % (g / 4)]) >> (2 * (j / (g / 4)))) & 3u) |
             (((static_cast<uint32_t>(codes[g / 4 + j / 8]) >> (j % 8)) & 1u) << 2);
    MOE_GGML_QUANT_CASES:
      break;  // never tiled (quant_format.h)
  }
  return 0;
}
inline void set_row_code(uint8_t* codes, QuantType t, int g, int j, uint32_t c) {
  switch (t) {
    case QuantType::kQ8: codes[j] = static_cast<uint8_t>(c); return;
    case QuantType::kQ4:
      codes[j % (g / 2)] = static_cast<uint8_t>(codes[j % (g / 2)] | (c << (4 * (j / (g / 2)))));
      return;
    case QuantType::kQ2:
      codes[j % (g / 4)] = static_cast<uint8_t>(codes[j % (g / 4)] | (c << (2 * (j / (g / 4)))));
      return;
    case QuantType::kQ3:
      codes[j % (g / 4)] = static_cast<uint8_t>(codes[j % (g / 4)] | ((c & 3u) << (2 * (j / (g / 4)))));
      codes[g / 4 + j / 8] = static_cast<uint8_t>(codes[g / 4 + j / 8] | (((c >> 2) & 1u) << (j % 8)));
      return;
    MOE_GGML_QUANT_CASES:
      assert(false && "ggml types are never tiled");
      return;
  }
}

// Where code j of tile row r sits in a block tile's code area (q8, q4, q2): byte and shift.
inline void tile_code_pos(QuantType t, int r, int j, int& byte, int& shift) {
  switch (t) {
    case QuantType::kQ8:
      byte = 64 * (j / 4) + 4 * r + j % 4;
      shift = 0;
      return;
    case QuantType::kQ4: {
      const int k = j % 8;
      byte = 64 * (j / 8) + 4 * r + k % 4;
      shift = k < 4 ? 0 : 4;
      return;
    }
    case QuantType::kQ3:  // its low two bits: laid out as q2
    case QuantType::kQ2: {
      const int k = j % 16;
      byte = 64 * (j / 16) + 4 * r + k % 4;
      shift = 2 * (k / 4);
      return;
    }
    MOE_GGML_QUANT_CASES:
      assert(false && "ggml types are never tiled");
      return;
  }
}

// Code j of tile row r, read from a block tile's code area (g: group size).
inline uint32_t tile_code(const uint8_t* c, QuantType t, int g, int r, int j) {
  int byte = 0, shift = 0;
  tile_code_pos(t, r, j, byte, shift);
  switch (t) {
    case QuantType::kQ8: return c[byte];
    case QuantType::kQ4: return (c[byte] >> shift) & 15u;
    case QuantType::kQ2: return (c[byte] >> shift) & 3u;
    case QuantType::kQ3: {  // high bit plane after the 4g bytes of low bits
      const int k = j % 32;
      const uint32_t hi = (c[4 * g + 64 * (j / 32) + 4 * r + k % 4] >> (k / 4)) & 1u;
      return ((c[byte] >> shift) & 3u) | hi << 2;
    }
    MOE_GGML_QUANT_CASES:
      break;
  }
  return 0;
}

// One run of 16 rows: block layout (rows, row_bytes apart) -> tile (contiguous). Each row's codes
// of a block are decoded to bytes first, then written to their chunk positions (no per-code
// division: packing a model at load time should cost little next to reading it).
void pack_run(const uint8_t* rows, QuantFormat f, int64_t nb, size_t row_bytes, uint8_t* tile) {
  const size_t bb = quant_block_bytes(f);
  const int g = f.group_size;
  uint8_t codes[256];
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = tile + static_cast<size_t>(b) * kQTileRows * bb;
    for (int r = 0; r < kQTileRows; ++r) {
      const uint8_t* blk = rows + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * bb;
      std::memcpy(out + 2 * r, blk, 2);           // scale
      std::memcpy(out + 32 + 2 * r, blk + 2, 2);  // zero
      uint8_t* o = out + 64 + 4 * r;
      if (f.type == QuantType::kQ8) {
        for (int c = 0; c < g / 4; ++c) std::memcpy(o + 64 * c, blk + 4 + 4 * c, 4);
      } else if (f.type == QuantType::kQ2 || f.type == QuantType::kQ3) {
        const uint8_t* cb = blk + 4;                  // q3: its low-bit plane is laid out as q2's codes
        const int quarter = g / 4 < 64 ? g / 4 : 64;  // g <= 256 (quant_format.h)
        for (int i = 0; i < quarter; ++i)
          for (int s = 0; s < 4; ++s) codes[i + s * quarter] = static_cast<uint8_t>((cb[i] >> (2 * s)) & 3u);
        for (int c = 0; c < g / 16; ++c)
          for (int j = 0; j < 4; ++j)
            o[64 * c + j] = static_cast<uint8_t>(codes[16 * c + j] | (codes[16 * c + 4 + j] << 2) |
                                                 (codes[16 * c + 8 + j] << 4) | (codes[16 * c + 12 + j] << 6));
        if (f.type == QuantType::kQ3) {  // high bits: chunk c, byte 4r + j, bit b = code 32c + 4b + j
          const uint8_t* hb = cb + g / 4;
          for (int c = 0; c < g / 32; ++c)
            for (int j = 0; j < 4; ++j) {
              uint32_t byte = 0;
              for (int bit = 0; bit < 8; ++bit) {
                const int code = 32 * c + 4 * bit + j;
                byte |= ((static_cast<uint32_t>(hb[code / 8]) >> (code % 8)) & 1u) << bit;
              }
              o[4 * g + 64 * c + j] = static_cast<uint8_t>(byte);
            }
        }
      } else {
        const uint8_t* cb = blk + 4;
        const int half = g / 2 < 128 ? g / 2 : 128;  // g <= 256 (quant_format.h)
        for (int i = 0; i < half; ++i) {
          codes[i] = cb[i] & 15u;
          codes[i + half] = static_cast<uint8_t>(cb[i] >> 4);
        }
        for (int c = 0; c < g / 8; ++c)
          for (int j = 0; j < 4; ++j)
            o[64 * c + j] = static_cast<uint8_t>(codes[8 * c + j] | (codes[8 * c + 4 + j] << 4));
      }
    }
  }
}

// Tile row r of one run -> one row in the block layout.
void unpack_run_row(const uint8_t* tile, QuantFormat f, int64_t nb, int r, uint8_t* row) {
  const size_t bb = quant_block_bytes(f);
  const int g = f.group_size;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = tile + static_cast<size_t>(b) * kQTileRows * bb;
    uint8_t* blk = row + static_cast<size_t>(b) * bb;
    std::memcpy(blk, in + 2 * r, 2);
    std::memcpy(blk + 2, in + 32 + 2 * r, 2);
    std::memset(blk + 4, 0, bb - 4);
    for (int j = 0; j < g; ++j) set_row_code(blk + 4, f.type, g, j, tile_code(in + 64, f.type, g, r, j));
  }
}

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// The arithmetic of qtile.h for one row and one token, given each block's code dot.
struct RowAcc {
  float tot = 0.0f, corr = 0.0f;
  void add(float s, float z, float sxb, float xsb, int32_t isum) {
    tot = std::fma(s * sxb, static_cast<float>(isum), tot);
    corr = std::fma(s * z, xsb, corr);
  }
  float value() const { return tot - corr; }
};

}  // namespace

bool qtile_has_layout(QuantFormat f) {
  if (is_ggml(f.type)) return false;                      // ggml's blocks stay as stored
  return f.type != QuantType::kQ3 || f.group_size >= 32;  // q3's bit plane needs 32 codes per chunk
}

bool qtile_preferred(QuantFormat f) {
  if (!qtile_has_layout(f) || qlinear_float_forced()) return false;
  switch (qisa_current()) {
    case QIsa::kAvx512: return qisa_has_vnni() || f.type != QuantType::kQ8;
    case QIsa::kAvx2: return f.type != QuantType::kQ8;
    case QIsa::kPortable: return false;
  }
  return false;
}

void qtile_pack(const uint8_t* src, QuantFormat f, int64_t N, int64_t K, uint8_t* dst) {
  assert(qtile_has_layout(f) && K % f.group_size == 0);
  const size_t row_bytes = quant_row_bytes(f, K);
  const int64_t nb = K / f.group_size, runs = N / kQTileRows;
  parallel_for(runs, runs >= 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const size_t off = static_cast<size_t>(i) * kQTileRows * row_bytes;
      pack_run(src + off, f, nb, row_bytes, dst + off);
    }
  });
  const size_t tail = static_cast<size_t>(runs) * kQTileRows * row_bytes;
  std::memcpy(dst + tail, src + tail, static_cast<size_t>(N) * row_bytes - tail);
}

void qtile_pack_in_place(uint8_t* w, QuantFormat f, int64_t N, int64_t K) {
  assert(qtile_has_layout(f) && K % f.group_size == 0);
  const size_t row_bytes = quant_row_bytes(f, K);
  const int64_t nb = K / f.group_size, runs = N / kQTileRows;
  thread_local std::vector<uint8_t> run;  // reused: experts are adopted while decoding
  run.resize(kQTileRows * row_bytes);
  for (int64_t i = 0; i < runs; ++i) {
    uint8_t* p = w + static_cast<size_t>(i) * kQTileRows * row_bytes;
    std::memcpy(run.data(), p, run.size());
    pack_run(run.data(), f, nb, row_bytes, p);
  }
}

void qtile_unpack(const uint8_t* src, QuantFormat f, int64_t N, int64_t K, uint8_t* dst) {
  assert(qtile_has_layout(f) && K % f.group_size == 0);
  const size_t row_bytes = quant_row_bytes(f, K);
  const int64_t nb = K / f.group_size, runs = N / kQTileRows;
  for (int64_t i = 0; i < runs; ++i) {
    const size_t off = static_cast<size_t>(i) * kQTileRows * row_bytes;
    for (int r = 0; r < kQTileRows; ++r) unpack_run_row(src + off, f, nb, r, dst + off + r * row_bytes);
  }
  const size_t tail = static_cast<size_t>(runs) * kQTileRows * row_bytes;
  std::memcpy(dst + tail, src + tail, static_cast<size_t>(N) * row_bytes - tail);
}

void qtile_dequantize_row(const uint8_t* w, QuantFormat f, int64_t N, int64_t K, int64_t n, float* out) {
  assert(n >= 0 && n < N);
  const size_t row_bytes = quant_row_bytes(f, K);
  if (n >= N / kQTileRows * kQTileRows) {
    dequantize_rows(w + static_cast<size_t>(n) * row_bytes, 1, K, f, out);
    return;
  }
  thread_local std::vector<uint8_t> row;  // reused: embedding lookups run every decode step
  row.resize(row_bytes);
  const int64_t run = n / kQTileRows;
  unpack_run_row(w + static_cast<size_t>(run) * kQTileRows * row_bytes, f, K / f.group_size,
                 static_cast<int>(n % kQTileRows), row.data());
  dequantize_rows(row.data(), 1, K, f, out);
}

void qtile_dot_scalar(const uint8_t* tile, QuantFormat f, int64_t nb, const int8_t* xq, const float* sx,
                      const float* xs, int64_t T, int64_t K, float* y, int64_t ldy) {
  const size_t bb = quant_block_bytes(f);
  const int g = f.group_size;
  for (int64_t t = 0; t < T; ++t) {
    RowAcc acc[kQTileRows];
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = tile + static_cast<size_t>(b) * kQTileRows * bb;
      const int8_t* xb = xq + t * K + b * g;
      for (int r = 0; r < kQTileRows; ++r) {
        int32_t isum = 0;
        for (int j = 0; j < g; ++j) isum += static_cast<int32_t>(tile_code(p + 64, f.type, g, r, j)) * xb[j];
        acc[r].add(half_at(p + 2 * r), half_at(p + 32 + 2 * r), sx[t * nb + b], xs[t * nb + b], isum);
      }
    }
    for (int r = 0; r < kQTileRows; ++r) y[t * ldy + r] = acc[r].value();
  }
}

void qrow_dot_exact(const uint8_t* row, QuantFormat f, int64_t nb, const int8_t* xq, const float* sx, const float* xs,
                    int64_t T, int64_t K, float* y, int64_t ldy) {
  const size_t bb = quant_block_bytes(f);
  const int g = f.group_size;
  for (int64_t t = 0; t < T; ++t) {
    RowAcc acc;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + static_cast<size_t>(b) * bb;
      const int8_t* xb = xq + t * K + b * g;
      int32_t isum = 0;
      for (int j = 0; j < g; ++j) isum += static_cast<int32_t>(row_code(blk + 4, f.type, g, j)) * xb[j];
      acc.add(half_at(blk), half_at(blk + 2), sx[t * nb + b], xs[t * nb + b], isum);
    }
    y[t * ldy] = acc.value();
  }
}

}  // namespace moe::cpu
