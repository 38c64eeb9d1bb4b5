// The kTile16 layout (kernels/cpu/qtile.h) of q8, q4, q3 and q2: packing round trips, dequantizing a row, and qlinear /
// qswiglu over tiled weights against the float64 reference of test_qlinear.cpp, on every SIMD
// path. The tiled arithmetic is specified exactly (qtile.h), so every ISA's kernel must give the
// same bits as the scalar kernel, for any T, thread count and position of a row (full run of 16
// or leftover row).
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/qlinear.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/cpu/qtile.h"
#include "kernels/quant/quantize.h"
#include "tests/kernels/qlinear_reference.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

using cpu::QIsa;
using namespace qref;  // NOLINT(google-build-using-namespace): the shared test helpers

constexpr QuantType kTiledTypes[] = {QuantType::kQ8, QuantType::kQ4, QuantType::kQ3, QuantType::kQ2};
constexpr int kGroups[] = {16, 32, 64, 128, 256};

std::vector<uint8_t> tiled(const std::vector<uint8_t>& w, QuantFormat f, int64_t N, int64_t K) {
  std::vector<uint8_t> t(w.size());
  cpu::qtile_pack(w.data(), f, N, K, t.data());
  return t;
}

TEST(QTile, LayoutIsDefinedForEveryFormatButQ3G16) {
  for (const int g : kGroups) {
    EXPECT_TRUE(cpu::qtile_has_layout(QuantFormat{QuantType::kQ8, g}));
    EXPECT_TRUE(cpu::qtile_has_layout(QuantFormat{QuantType::kQ4, g}));
    EXPECT_TRUE(cpu::qtile_has_layout(QuantFormat{QuantType::kQ2, g}));
    EXPECT_EQ(cpu::qtile_has_layout(QuantFormat{QuantType::kQ3, g}), g >= 32);
  }
}

// The group sizes each tiled type is tested with.
std::vector<int> groups_of(QuantType t) {
  return t == QuantType::kQ3 ? std::vector<int>{32, 64, 128, 256} : std::vector<int>{16, 32, 64, 128, 256};
}

// Pack -> unpack gives the block layout back byte for byte; in-place packing equals packing into
// a copy; runs of 16 rows really move (the layouts differ) and leftover rows do not.
TEST(QTile, PackRoundTrips) {
  std::mt19937 rng(21);
  for (const QuantType t : kTiledTypes)
    for (const int g : groups_of(t)) {
      const QuantFormat f{t, g};
      for (const int64_t N : {int64_t{16}, int64_t{37}, int64_t{64}}) {
        const int64_t K = 3 * g;
        SCOPED_TRACE(format_name(f) + " N=" + std::to_string(N));
        const auto w = random_weights(rng, f, N, K);
        const auto p = tiled(w, f, N, K);
        const size_t run_bytes = 16 * quant_row_bytes(f, K) * static_cast<size_t>(N / 16);
        EXPECT_NE(0, std::memcmp(p.data(), w.data(), run_bytes));
        EXPECT_EQ(0, std::memcmp(p.data() + run_bytes, w.data() + run_bytes, w.size() - run_bytes));
        std::vector<uint8_t> back(w.size(), 0xA5);
        cpu::qtile_unpack(p.data(), f, N, K, back.data());
        EXPECT_EQ(back, w);
        std::vector<uint8_t> in_place = w;
        cpu::qtile_pack_in_place(in_place.data(), f, N, K);
        EXPECT_EQ(in_place, p);
      }
    }
}

// One code placed by hand where qtile.h says it goes: row 16 + 5, code j of block 1.
TEST(QTile, CodePositionsFollowTheDocumentedLayout) {
  for (const QuantType t : kTiledTypes) {
    const QuantFormat f{t, 32};
    const int64_t N = 32, K = 64;
    std::vector<uint8_t> w(static_cast<size_t>(N) * quant_row_bytes(f, K), 0);
    const int r = 5, j = 13;
    const uint32_t code = t == QuantType::kQ8 ? 0xB7u : t == QuantType::kQ4 ? 0xBu : t == QuantType::kQ3 ? 0x6u : 0x2u;
    std::vector<uint32_t> codes(32, 0);
    codes[j] = code;
    uint8_t* blk = w.data() + (16 + r) * quant_row_bytes(f, K) + quant_block_bytes(f);
    put_u16(blk, 0x1234);      // scale
    put_u16(blk + 2, 0x5678);  // zero
    pack_codes(codes, f, blk + 4);
    const auto p = tiled(w, f, N, K);
    const uint8_t* bt = p.data() + 16 * quant_row_bytes(f, K) + 16 * quant_block_bytes(f);  // run 1, block 1
    uint16_t s = 0, z = 0;
    std::memcpy(&s, bt + 2 * r, 2);
    std::memcpy(&z, bt + 32 + 2 * r, 2);
    EXPECT_EQ(s, 0x1234);
    EXPECT_EQ(z, 0x5678);
    if (t == QuantType::kQ8) {
      EXPECT_EQ(bt[64 + 64 * (j / 4) + 4 * r + j % 4], code);
    } else if (t == QuantType::kQ4) {  // chunk 1 (codes 8..15), j = 13 = 8 + 4 + 1: high nibble of byte 4r + 1
      EXPECT_EQ(bt[64 + 64 * 1 + 4 * r + 1], code << 4);
    } else if (t == QuantType::kQ2) {  // chunk 0 (codes 0..15), j = 13 = 4 * 3 + 1: bits 6-7 of byte 4r + 1
      EXPECT_EQ(bt[64 + 4 * r + 1], code << 6);
    } else {  // low bits as q2; high bit: plane after 4g bytes, chunk 0, j = 13 = 4 * 3 + 1: bit 3 of byte 4r + 1
      EXPECT_EQ(bt[64 + 4 * r + 1], (code & 3u) << 6);
      EXPECT_EQ(bt[64 + 4 * 32 + 4 * r + 1], 1u << 3);
    }
    size_t nonzero = 0;
    for (const uint8_t b : p) nonzero += b != 0;
    // two bytes of scale, two of zero, one of codes (q3: two, its low and its high bit)
    EXPECT_EQ(nonzero, t == QuantType::kQ3 ? 6u : 5u);
  }
}

TEST(QTile, DequantizeRowMatchesBlockLayout) {
  std::mt19937 rng(22);
  for (const QuantType t : kTiledTypes)
    for (const int g : {32, 64, 256}) {
      const QuantFormat f{t, g};
      const int64_t N = 35, K = 2 * g;
      const auto w = random_weights(rng, f, N, K);
      const auto p = tiled(w, f, N, K);
      std::vector<float> want(static_cast<size_t>(K)), got(static_cast<size_t>(K));
      for (int64_t n = 0; n < N; ++n) {
        dequantize_rows(w.data() + static_cast<size_t>(n) * quant_row_bytes(f, K), 1, K, f, want.data());
        ref::poison(got);
        cpu::qtile_dequantize_row(p.data(), f, N, K, n, got.data());
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), sizeof(float) * want.size()))
            << format_name(f) << " row " << n;
      }
    }
}

// The tiled projection against the float64 reference (with the integer path's bound on the
// rounding of x), and bit for bit the same on every ISA.
using QTileParam = std::tuple<QuantType, int>;
class QTileLinearTest : public ::testing::TestWithParam<QTileParam> {};

TEST_P(QTileLinearTest, MatchesReferenceOnEveryIsa) {
  const QuantFormat f{std::get<0>(GetParam()), std::get<1>(GetParam())};
  const int64_t g = f.group_size;
  std::mt19937 rng(static_cast<uint32_t>(300 + 10 * static_cast<int>(f.type) + g));
  const IsaList isas;
  for (const int64_t K : {g, 5 * g, int64_t{2048}}) {
    for (const int64_t N : {int64_t{16}, int64_t{21}, int64_t{80}, int64_t{301}}) {
      const auto w = random_weights(rng, f, N, K);
      const auto p = tiled(w, f, N, K);
      for (const int64_t T : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}}) {
        SCOPED_TRACE("K=" + std::to_string(K) + " N=" + std::to_string(N) + " T=" + std::to_string(T));
        const auto x = ref::normal(rng, static_cast<size_t>(T * K));
        std::vector<double> want, mag;
        ref_qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, want, mag);
        const std::vector<double> err = int_bound(x.data(), T, K, w.data(), f, N);
        std::vector<float> first, y(static_cast<size_t>(T * N));
        for (const QIsa isa : isas.isas) {
          SCOPED_TRACE(std::string("isa=") + cpu::qisa_name(isa));
          cpu::qisa_set(isa);
          ref::poison(y);
          cpu::qlinear(x.data(), T, K, cpu::QWeight{p.data(), f, QuantLayout::kTile16}, N, WeightRef{}, y.data());
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], want[i], tolerance(mag[i]) + err[i]) << "element " << i;
          if (first.empty()) {
            first = y;
          } else {
            ASSERT_EQ(0, std::memcmp(first.data(), y.data(), sizeof(float) * y.size())) << "differs from the best ISA";
          }
        }
      }
    }
  }
}

std::vector<QTileParam> tiled_formats() {
  std::vector<QTileParam> v;
  for (const QuantType t : kTiledTypes)
    for (const int g : groups_of(t)) v.emplace_back(t, g);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Formats, QTileLinearTest, ::testing::ValuesIn(tiled_formats()),
                         [](const ::testing::TestParamInfo<QTileParam>& p) {
                           return format_name(QuantFormat{std::get<0>(p.param), std::get<1>(p.param)});
                         });

// Bias, of each dtype, added after the sum as qtile.h specifies.
TEST(QTile, Bias) {
  std::mt19937 rng(23);
  const IsaList isas;
  const QuantFormat f{QuantType::kQ4, 32};
  const int64_t K = 160, N = 37;
  const auto w = random_weights(rng, f, N, K);
  const auto p = tiled(w, f, N, K);
  for (const DType bt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const auto x = ref::normal(rng, static_cast<size_t>(2 * K));
    const ref::Weights b(ref::normal(rng, static_cast<size_t>(N)), bt);
    std::vector<double> want, mag;
    ref_qlinear(x.data(), 2, K, w.data(), f, N, b.ref(), want, mag);
    const std::vector<double> err = int_bound(x.data(), 2, K, w.data(), f, N);
    std::vector<float> y(static_cast<size_t>(2 * N)), nob(y.size());
    for (const QIsa isa : isas.isas) {
      cpu::qisa_set(isa);
      cpu::qlinear(x.data(), 2, K, cpu::QWeight{p.data(), f, QuantLayout::kTile16}, N, b.ref(), y.data());
      cpu::qlinear(x.data(), 2, K, cpu::QWeight{p.data(), f, QuantLayout::kTile16}, N, WeightRef{}, nob.data());
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], want[i], tolerance(mag[i]) + err[i]) << "element " << i;
        ASSERT_EQ(y[i], nob[i] + load_as_f32(b.ref().data, bt, static_cast<int64_t>(i) % N));
      }
    }
  }
}

// A token row of a batch equals the row computed alone, bit for bit, and one or two threads
// give the same bits.
TEST(QTile, TokenRowAndThreadsDoNotChangeBits) {
  std::mt19937 rng(24);
  const IsaList isas;
  const int64_t K = 1024, N = 16 * 20 + 3;
  const int saved = omp_get_max_threads();
  for (const QuantFormat f :
       {QuantFormat{QuantType::kQ8, 64}, QuantFormat{QuantType::kQ4, 64}, QuantFormat{QuantType::kQ8, 32},
        QuantFormat{QuantType::kQ4, 256}, QuantFormat{QuantType::kQ2, 16}, QuantFormat{QuantType::kQ2, 128}})
    for (const int64_t T : {int64_t{5}, int64_t{6}, int64_t{7}}) {
      const auto w = random_weights(rng, f, N, K);
      const auto p = tiled(w, f, N, K);
      const cpu::QWeight qw{p.data(), f, QuantLayout::kTile16};
      const auto x = ref::normal(rng, static_cast<size_t>(T * K));
      for (const QIsa isa : isas.isas) {
        SCOPED_TRACE(format_name(f) + " T=" + std::to_string(T) + " isa=" + cpu::qisa_name(isa));
        cpu::qisa_set(isa);
        std::vector<float> batch(static_cast<size_t>(T * N)), one(static_cast<size_t>(N)), b2(batch.size());
        omp_set_num_threads(2);
        cpu::qlinear(x.data(), T, K, qw, N, WeightRef{}, batch.data());
        for (int64_t r = 0; r < T; ++r) {
          cpu::qlinear(x.data() + r * K, 1, K, qw, N, WeightRef{}, one.data());
          ASSERT_EQ(0, std::memcmp(one.data(), batch.data() + r * N, sizeof(float) * N)) << "token row " << r;
        }
        omp_set_num_threads(1);
        cpu::qlinear(x.data(), T, K, qw, N, WeightRef{}, b2.data());
        EXPECT_EQ(0, std::memcmp(b2.data(), batch.data(), sizeof(float) * batch.size()));
      }
    }
  omp_set_num_threads(saved);
}

// qswiglu over tiled gate / up / down equals the composition of the tiled kernels bit for bit (the
// projections themselves are checked against the reference above).
TEST(QTile, SwigluEqualsCompositionOfKernels) {
  std::mt19937 rng(25);
  const IsaList isas;
  const int64_t H = 320, I = 128;  // H and I are K of gate / up and down: multiples of their groups
  const QuantFormat f{QuantType::kQ4, 64}, df{QuantType::kQ8, 32};
  const auto gate = random_weights(rng, f, I, H), up = random_weights(rng, f, I, H),
             down = random_weights(rng, df, H, I);
  const auto gt = tiled(gate, f, I, H), ut = tiled(up, f, I, H), dt = tiled(down, df, H, I);
  const cpu::QWeight gw{gt.data(), f, QuantLayout::kTile16}, uw{ut.data(), f, QuantLayout::kTile16},
      dw{dt.data(), df, QuantLayout::kTile16};
  for (const int64_t T : {int64_t{1}, int64_t{6}}) {
    const auto x = ref::normal(rng, static_cast<size_t>(T * H));
    for (const QIsa isa : isas.isas) {
      SCOPED_TRACE("T=" + std::to_string(T) + " isa=" + cpu::qisa_name(isa));
      cpu::qisa_set(isa);
      std::vector<float> scratch(static_cast<size_t>(2 * T * I)), y(static_cast<size_t>(T * H));
      ref::poison(scratch);
      ref::poison(y);
      cpu::qswiglu(x.data(), T, H, gw, uw, dw, I, scratch.data(), y.data());
      std::vector<float> gk(static_cast<size_t>(T * I)), uk(gk.size()), yk(y.size());
      cpu::qlinear(x.data(), T, H, gw, I, WeightRef{}, gk.data());
      cpu::qlinear(x.data(), T, H, uw, I, WeightRef{}, uk.data());
      cpu::silu_mul(gk.data(), uk.data(), T * I, gk.data());
      cpu::qlinear(gk.data(), T, I, dw, H, WeightRef{}, yk.data());
      EXPECT_EQ(0, std::memcmp(y.data(), yk.data(), sizeof(float) * y.size()));
      // Mixed layouts (tiled gate, block-layout up) take the unfused route: the same composition.
      const cpu::QWeight ur{up.data(), f, QuantLayout::kRows};
      std::vector<float> ym(y.size());
      cpu::qswiglu(x.data(), T, H, gw, ur, dw, I, scratch.data(), ym.data());
      cpu::qlinear(x.data(), T, H, gw, I, WeightRef{}, gk.data());
      cpu::qlinear(x.data(), T, H, ur, I, WeightRef{}, uk.data());
      cpu::silu_mul(gk.data(), uk.data(), T * I, gk.data());
      cpu::qlinear(gk.data(), T, I, dw, H, WeightRef{}, yk.data());
      EXPECT_EQ(0, std::memcmp(ym.data(), yk.data(), sizeof(float) * y.size()));
    }
  }
}

}  // namespace
}  // namespace moe
