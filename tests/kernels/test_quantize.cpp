// Quantizers (RTN, HQQ), packing and dequantization of kernels/quant against the block layout
// of quant_format.h: names, hand-packed blocks, per-element error bounds, edge-case rows,
// thread-count independence, and the RTN-vs-HQQ relative error table.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/quant/quant_format.h"
#include "kernels/quant/quantize.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

constexpr QuantType kTypes[] = {QuantType::kQ8, QuantType::kQ4, QuantType::kQ3, QuantType::kQ2};
constexpr int32_t kGroups[] = {16, 32, 64, 128, 256};

std::vector<QuantFormat> all_formats() {
  std::vector<QuantFormat> out;
  for (const QuantType t : kTypes)
    for (const int32_t g : kGroups) out.push_back(QuantFormat{t, g});
  return out;
}

uint32_t max_code(QuantFormat f) {
  return (1u << quant_bits(f.type)) - 1u;
}

QuantizeOptions options(Quantizer q) {
  QuantizeOptions o;
  o.quantizer = q;
  return o;
}

std::vector<uint8_t> quantize(const std::vector<float>& w, int64_t N, int64_t K, QuantFormat f, Quantizer q) {
  std::vector<uint8_t> out(static_cast<size_t>(N) * quant_row_bytes(f, K), 0xcd);
  quantize_rows(w.data(), N, K, f, options(q), out.data());
  return out;
}

std::vector<float> dequantize(const std::vector<uint8_t>& q, int64_t N, int64_t K, QuantFormat f) {
  std::vector<float> out(static_cast<size_t>(N * K));
  ref::poison(out);
  dequantize_rows(q.data(), N, K, f, out.data());
  return out;
}

const uint8_t* block_at(const std::vector<uint8_t>& q, int64_t K, QuantFormat f, int64_t n, int64_t b) {
  return q.data() + static_cast<size_t>(n) * quant_row_bytes(f, K) + static_cast<size_t>(b) * quant_block_bytes(f);
}
float block_scale(const uint8_t* blk) {
  return f16_to_f32(static_cast<uint16_t>(blk[0] | blk[1] << 8));
}
float block_zero(const uint8_t* blk) {
  return f16_to_f32(static_cast<uint16_t>(blk[2] | blk[3] << 8));
}

// Mean over rows of ||w_row - deq_row||_2 / ||w_row||_2.
double mean_relative_error(const std::vector<float>& w, const std::vector<float>& d, int64_t N, int64_t K) {
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    double e = 0.0, m = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const double x = w[static_cast<size_t>(n * K + k)];
      const double y = d[static_cast<size_t>(n * K + k)];
      e += (x - y) * (x - y);
      m += x * x;
    }
    sum += m > 0.0 ? std::sqrt(e / m) : std::sqrt(e);
  }
  return sum / static_cast<double>(N);
}

// Packs codes by the text of quant_format.h, independently of kernels/quant, behind a header
// with the given fp16 scale and zero bits.
std::vector<uint8_t> pack_by_spec(const std::vector<uint32_t>& c, QuantFormat f, uint16_t s, uint16_t z) {
  const size_t g = static_cast<size_t>(f.group_size);
  std::vector<uint8_t> b(quant_block_bytes(f), 0);
  b[0] = static_cast<uint8_t>(s & 0xff);
  b[1] = static_cast<uint8_t>(s >> 8);
  b[2] = static_cast<uint8_t>(z & 0xff);
  b[3] = static_cast<uint8_t>(z >> 8);
  uint8_t* p = b.data() + 4;
  switch (f.type) {
    case QuantType::kQ8:
      for (size_t j = 0; j < g; ++j) p[j] = static_cast<uint8_t>(c[j]);
      break;
    case QuantType::kQ4:
      for (size_t i = 0; i < g / 2; ++i) p[i] = static_cast<uint8_t>(c[i] | c[i + g / 2] << 4);
      break;
    case QuantType::kQ2:
    case QuantType::kQ3:
      for (size_t i = 0; i < g / 4; ++i) {
        p[i] = static_cast<uint8_t>((c[i] & 3) | (c[i + g / 4] & 3) << 2 | (c[i + g / 2] & 3) << 4 |
                                    (c[i + 3 * g / 4] & 3) << 6);
      }
      if (f.type == QuantType::kQ3) {
        for (size_t i = 0; i < g / 8; ++i)
          for (size_t bit = 0; bit < 8; ++bit) p[g / 4 + i] |= static_cast<uint8_t>(((c[8 * i + bit] >> 2) & 1) << bit);
      }
      break;
    MOE_GGML_QUANT_CASES:
      break;
  }
  return b;
}

// Checks a quantized tensor element by element and returns its mean relative error.
//
// Bound. The block stores s16, z16 (fp16) and, for every element, a code c in [0, M]
// (M = 2^bits - 1); it decodes to (c - z16) * s16. The codes must be those the quantizer's
// contract names: c = clamp(round(w / s16 + z16), 0, M), i.e. the nearest point of the grid
// {(c - z16) * s16 : c = 0..M}, whose ends are lo = -z16 * s16 and hi = (M - z16) * s16. So
//   |w - deq| <= s16 / 2                      when lo <= w <= hi,
//   |w - deq| <= s16 / 2 + (lo - w) or (w - hi) beyond the ends (the clamp),
// and the overshoot beyond the ends is only the fp16 rounding of the zero (RTN: the grid of the
// unrounded zero starts at min and, the scale being rounded up, reaches max). The product
// (c - z16) * s16 is rounded once more in f32: 2^-23 (|w| + s16) covers it. For RTN the scale
// itself is (max - min) / M rounded up by at most one fp16 ulp, so where it is a normal fp16
// the bound is the brief's scale / 2 * (1 + 1e-3) plus the end slack; that is checked too.
// HQQ picks another zero, so only the code consistency and finiteness are checked for it.
// (A void helper so that ASSERT_* may stop it; check_tensor below returns the error.)
void check_tensor_into(const std::vector<float>& w, int64_t N, int64_t K, QuantFormat f, Quantizer quantizer,
                       double& rel_err) {
  const auto q = quantize(w, N, K, f, quantizer);
  const auto d = dequantize(q, N, K, f);
  rel_err = mean_relative_error(w, d, N, K);
  const int64_t g = f.group_size;
  const float M = static_cast<float>(max_code(f));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t b = 0; b < K / g; ++b) {
      const uint8_t* blk = block_at(q, K, f, n, b);
      const float s = block_scale(blk), z = block_zero(blk);
      EXPECT_TRUE(std::isfinite(s) && s > 0.0f && std::isfinite(z)) << "row " << n << " block " << b;
      const float* wg = w.data() + n * K + b * g;
      const float gmin = *std::min_element(wg, wg + g), gmax = *std::max_element(wg, wg + g);
      const double rtn_scale = (static_cast<double>(gmax) - gmin) / M;
      if (quantizer == Quantizer::kRtn && gmax > gmin && rtn_scale >= 0x1p-14 && std::fabs(z) < 2048.0f) {
        EXPECT_LE(s, rtn_scale * (1.0 + 0x1p-10)) << "row " << n << " block " << b;
      }
      const double lo = -static_cast<double>(z) * s, hi = (static_cast<double>(M) - z) * s;
      for (int64_t j = 0; j < g; ++j) {
        const float x = wg[j];
        const uint32_t want = static_cast<uint32_t>(std::clamp(std::nearbyint(x / s + z), 0.0f, M));
        const uint32_t code = quant_code(blk, f, static_cast<int32_t>(j));
        ASSERT_EQ(code, want) << "row " << n << " block " << b << " j " << j << " w " << x;
        const float y = d[static_cast<size_t>(n * K + b * g + j)];
        ASSERT_EQ(y, (static_cast<float>(code) - z) * s);
        if (quantizer != Quantizer::kRtn) continue;
        const double slack = std::max({0.0, lo - x, x - hi});
        const double bound = s / 2.0 * (1.0 + 1e-3) + slack + 0x1p-23 * (std::fabs(x) + s);
        ASSERT_LE(std::fabs(static_cast<double>(x) - y), bound)
            << quant_format_name(f) << " row " << n << " block " << b << " j " << j << " w " << x << " s " << s << " z "
            << z;
      }
    }
  }
}

double check_tensor(const std::vector<float>& w, int64_t N, int64_t K, QuantFormat f, Quantizer quantizer) {
  double e = -1.0;
  check_tensor_into(w, N, K, f, quantizer, e);
  return e;
}

// n values ~ Student-t with 3 degrees of freedom (heavy tails, as LLM weights), never 0.
std::vector<float> student_t(std::mt19937& rng, size_t n) {
  std::student_t_distribution<float> dist(3.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

// ---- Names ---------------------------------------------------------------------------------

TEST(QuantFormat, NameParseRoundTrip) {
  for (const QuantFormat f : all_formats()) {
    const std::string name = quant_format_name(f);
    std::string want = "q";
    want += std::to_string(quant_bits(f.type));
    want += "g";
    want += std::to_string(f.group_size);
    EXPECT_EQ(name, want);
    const auto parsed = parse_quant_format(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, f) << name;
  }
  EXPECT_EQ(parse_quant_format("q8"), (QuantFormat{QuantType::kQ8, 64}));
  EXPECT_EQ(parse_quant_format("q4"), (QuantFormat{QuantType::kQ4, 64}));
  EXPECT_EQ(parse_quant_format("q3"), (QuantFormat{QuantType::kQ3, 64}));
  EXPECT_EQ(parse_quant_format("q2"), (QuantFormat{QuantType::kQ2, 16}));
  EXPECT_EQ(parse_quant_format("q4g128"), (QuantFormat{QuantType::kQ4, 128}));
  for (const char* bad : {"q5", "q4g48", "q4g0", "", "q", "Q4", "4", "q4g", "q4g064", "q4g64x", "q4g512", "q4x64",
                          "q16", "q4g-64", " q4", "q1", "q4g1024"})
    EXPECT_FALSE(parse_quant_format(bad).has_value()) << "'" << bad << "'";
}

TEST(QuantFormat, BlockSizes) {
  EXPECT_EQ(quant_block_bytes(QuantFormat{QuantType::kQ4, 64}), 36u);
  EXPECT_EQ(quant_block_bytes(QuantFormat{QuantType::kQ3, 64}), 28u);
  EXPECT_EQ(quant_block_bytes(QuantFormat{QuantType::kQ2, 16}), 8u);
  EXPECT_DOUBLE_EQ(quant_bits_per_weight(QuantFormat{QuantType::kQ4, 64}), 4.5);
}

// ---- Layout ----------------------------------------------------------------------------------

// Decodes a row of hand-packed blocks and compares with (code - z) * s for exact fp16 s, z.
void expect_decodes(const std::vector<std::vector<uint32_t>>& blocks, QuantFormat f) {
  const uint16_t s_bits = 0x3800, z_bits = 0x3e00;  // 0.5, 1.5
  const float s = 0.5f, z = 1.5f;
  std::vector<uint8_t> row;
  for (const auto& c : blocks) {
    const auto b = pack_by_spec(c, f, s_bits, z_bits);
    row.insert(row.end(), b.begin(), b.end());
  }
  const int64_t g = f.group_size, K = g * static_cast<int64_t>(blocks.size());
  const auto d = dequantize(row, 1, K, f);
  for (size_t b = 0; b < blocks.size(); ++b) {
    const uint8_t* blk = block_at(row, K, f, 0, static_cast<int64_t>(b));
    for (int64_t j = 0; j < g; ++j) {
      const uint32_t c = blocks[b][static_cast<size_t>(j)];
      ASSERT_EQ(quant_code(blk, f, static_cast<int32_t>(j)), c) << quant_format_name(f) << " block " << b << " j " << j;
      ASSERT_EQ(d[b * static_cast<size_t>(g) + static_cast<size_t>(j)], (static_cast<float>(c) - z) * s)
          << quant_format_name(f) << " block " << b << " j " << j;
    }
  }
}

TEST(QuantLayout, HandBuiltBlocksDecode) {
  for (const QuantFormat f : all_formats()) {
    SCOPED_TRACE(quant_format_name(f));
    const size_t g = static_cast<size_t>(f.group_size);
    const uint32_t M = max_code(f);
    // One block per position j with code M at j and 0 elsewhere, then its complement: a code
    // read from or written to the wrong position shows in one of them.
    std::vector<std::vector<uint32_t>> blocks;
    for (size_t j = 0; j < g; ++j) {
      std::vector<uint32_t> hot(g, 0), cold(g, M);
      hot[j] = M;
      cold[j] = 0;
      blocks.push_back(hot);
      blocks.push_back(cold);
    }
    // Every code value at every position: block v holds code (j + v) mod (M + 1) at j.
    for (uint32_t v = 0; v <= M; ++v) {
      std::vector<uint32_t> c(g);
      for (size_t j = 0; j < g; ++j) c[j] = static_cast<uint32_t>((j + v) % (M + 1));
      blocks.push_back(c);
    }
    expect_decodes(blocks, f);
  }
}

TEST(QuantLayout, QuantCodeRandomRoundTrip) {
  std::mt19937 rng(5);
  for (const QuantFormat f : all_formats()) {
    SCOPED_TRACE(quant_format_name(f));
    std::uniform_int_distribution<uint32_t> code(0, max_code(f));
    std::vector<std::vector<uint32_t>> blocks(8, std::vector<uint32_t>(static_cast<size_t>(f.group_size)));
    for (auto& b : blocks)
      for (uint32_t& c : b) c = code(rng);
    expect_decodes(blocks, f);
  }
}

// quantize_rows writes the layout the hand packer writes: requantizing the decoded values of a
// hand-built block (exactly on the grid, spanning codes 0..M) gives back its codes.
TEST(QuantLayout, QuantizerPacksLikeSpec) {
  std::mt19937 rng(6);
  for (const QuantFormat f : all_formats()) {
    SCOPED_TRACE(quant_format_name(f));
    const size_t g = static_cast<size_t>(f.group_size);
    const uint32_t M = max_code(f);
    std::uniform_int_distribution<uint32_t> code(0, M);
    // Codes 0 and M present (at 3 and g - 2), so that min and max are the grid ends and RTN
    // recovers scale 1, zero 0.
    std::vector<uint32_t> c;
    for (size_t j = 0; j < g; ++j) c.push_back(j == 3 ? 0 : j == g - 2 ? M : code(rng));
    std::vector<float> w(g);
    for (size_t j = 0; j < g; ++j) w[j] = static_cast<float>(c[j]);
    for (const Quantizer q : {Quantizer::kRtn, Quantizer::kHqq}) {
      const auto got = quantize(w, 1, static_cast<int64_t>(g), f, q);
      const auto want = pack_by_spec(c, f, 0x3c00, 0x0000);  // scale 1, zero 0
      EXPECT_EQ(got, want);
    }
  }
}

// ---- Round trips ---------------------------------------------------------------------------------

TEST(QuantRoundTrip, RtnBoundAndHqqNotWorse) {
  std::mt19937 rng(7);
  for (const QuantFormat f : all_formats()) {
    double rtn_sum = 0.0, hqq_sum = 0.0;
    int cases = 0;
    for (const int64_t N : {1, 3, 37}) {
      for (const int64_t blocks : {1, 2, 7}) {
        const int64_t K = blocks * f.group_size;
        SCOPED_TRACE(quant_format_name(f) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
        auto w = ref::normal(rng, static_cast<size_t>(N * K));
        for (float& x : w) x *= 0.05f;
        const double rtn = check_tensor(w, N, K, f, Quantizer::kRtn);
        const double hqq = check_tensor(w, N, K, f, Quantizer::kHqq);
        // HQQ keeps RTN's zero for any group it does not improve (squared error), so per row
        // and hence per tensor it is never worse; 1e-12 only absorbs summation order.
        EXPECT_LE(hqq, rtn * (1.0 + 1e-12) + 1e-15);
        rtn_sum += rtn;
        hqq_sum += hqq;
        ++cases;
      }
    }
    std::printf("[ round trip ] %-7s mean rel L2 error  RTN %.5f  HQQ %.5f\n", quant_format_name(f).c_str(),
                rtn_sum / cases, hqq_sum / cases);
  }
}

// ---- Edge cases -----------------------------------------------------------------------------------

TEST(QuantEdgeCases, ConstantRows) {
  for (const QuantFormat f : all_formats()) {
    for (const Quantizer q : {Quantizer::kRtn, Quantizer::kHqq}) {
      for (const float v : {0.0f, 0.5f, -3.25f, 0.1f, -1e-3f, 1e-6f, 1e-9f, 7.0f, 1000.0f}) {
        SCOPED_TRACE(quant_format_name(f) + " v=" + std::to_string(v));
        const int64_t K = 2 * f.group_size;
        const std::vector<float> w(static_cast<size_t>(K), v);
        const auto d = dequantize(quantize(w, 1, K, f, q), 1, K, f);
        // A constant decodes to v rounded to fp16 (relative 2^-11; below the fp16 range, to
        // within the smallest subnormal 2^-24).
        for (const float y : d) ASSERT_NEAR(y, v, std::fabs(v) * 0x1p-11 + 0x1p-24);
      }
    }
  }
}

TEST(QuantEdgeCases, OutlierTinyNegativeRows) {
  std::mt19937 rng(8);
  for (const QuantFormat f : all_formats()) {
    SCOPED_TRACE(quant_format_name(f));
    const int64_t N = 3, K = 4 * f.group_size;
    // One huge outlier per row.
    auto w = ref::normal(rng, static_cast<size_t>(N * K));
    for (int64_t n = 0; n < N; ++n) w[static_cast<size_t>(n * K + (n * 37) % K)] = n % 2 ? -1000.0f : 1000.0f;
    double rtn = check_tensor(w, N, K, f, Quantizer::kRtn);
    EXPECT_LE(check_tensor(w, N, K, f, Quantizer::kHqq), rtn * (1.0 + 1e-12));
    // Tiny values: the scale falls into (or below) the fp16 subnormals.
    w = ref::normal(rng, static_cast<size_t>(N * K));
    for (float& x : w) x *= 1e-6f;
    rtn = check_tensor(w, N, K, f, Quantizer::kRtn);
    EXPECT_LE(check_tensor(w, N, K, f, Quantizer::kHqq), rtn * (1.0 + 1e-12));
    EXPECT_LT(rtn, 0.6);  // q2's own error is ~0.3; subnormal scales must not make it useless
    // Negative-only and positive-only rows (the zero lies outside the code range).
    for (const float sign : {-1.0f, 1.0f}) {
      w = ref::uniform(rng, static_cast<size_t>(N * K), 0.5f, 2.0f);
      for (float& x : w) x *= sign;
      rtn = check_tensor(w, N, K, f, Quantizer::kRtn);
      EXPECT_LE(check_tensor(w, N, K, f, Quantizer::kHqq), rtn * (1.0 + 1e-12));
      EXPECT_LT(rtn, f.type == QuantType::kQ8 ? 0.01 : 0.3);
    }
  }
}

// ---- Threads --------------------------------------------------------------------------------------

TEST(QuantThreads, SameBytesForOneAndTwoThreads) {
  std::mt19937 rng(9);
  const int saved = omp_get_max_threads();
  for (const QuantFormat f : all_formats()) {
    for (const Quantizer q : {Quantizer::kRtn, Quantizer::kHqq}) {
      SCOPED_TRACE(quant_format_name(f));
      const int64_t N = 37, K = 512;
      const auto w = student_t(rng, static_cast<size_t>(N * K));
      omp_set_num_threads(1);
      const auto q1 = quantize(w, N, K, f, q);
      const auto d1 = dequantize(q1, N, K, f);
      omp_set_num_threads(2);
      const auto q2 = quantize(w, N, K, f, q);
      const auto d2 = dequantize(q2, N, K, f);
      EXPECT_EQ(q1, q2);
      EXPECT_EQ(0, std::memcmp(d1.data(), d2.data(), d1.size() * sizeof(float)));
    }
  }
  omp_set_num_threads(saved);
}

// ---- The RTN vs HQQ table -------------------------------------------------------------------------

// Mean relative L2 error per row, RTN vs HQQ (default options), at the weight scale of LLM
// linear layers (std 0.02): Gaussian, Student-t(3), and Gaussian with 4 outliers of 10 sigma per
// row of 4096.
TEST(QuantReport, RelativeErrorTable) {
  const QuantFormat formats[] = {{QuantType::kQ8, 64}, {QuantType::kQ4, 64}, {QuantType::kQ4, 128},
                                 {QuantType::kQ3, 64}, {QuantType::kQ2, 16}, {QuantType::kQ2, 32}};
  const int64_t N = 64, K = 4096;
  const char* names[] = {"gaussian", "student-t3", "gauss+outliers"};
  std::vector<float> data[3];
  std::mt19937 rng(10);
  data[0] = ref::normal(rng, static_cast<size_t>(N * K));
  data[1] = student_t(rng, static_cast<size_t>(N * K));
  data[2] = ref::normal(rng, static_cast<size_t>(N * K));
  std::uniform_int_distribution<int64_t> pos(0, K - 1);
  for (int64_t n = 0; n < N; ++n)
    for (int o = 0; o < 4; ++o) data[2][static_cast<size_t>(n * K + pos(rng))] = o % 2 ? -10.0f : 10.0f;
  for (auto& d : data)
    for (float& x : d) x *= 0.02f;

  std::printf("[ report ] mean relative L2 error ||w - deq|| / ||w|| per row, N=%lld K=%lld, std 0.02\n",
              static_cast<long long>(N), static_cast<long long>(K));
  std::printf("[ report ] %-8s %-15s %10s %10s %9s\n", "format", "weights", "RTN", "HQQ", "HQQ/RTN");
  for (int dist = 0; dist < 3; ++dist) {
    double rtn_err[6], hqq_err[6];
    for (size_t i = 0; i < 6; ++i) {
      const QuantFormat f = formats[i];
      rtn_err[i] =
          mean_relative_error(data[dist], dequantize(quantize(data[dist], N, K, f, Quantizer::kRtn), N, K, f), N, K);
      hqq_err[i] =
          mean_relative_error(data[dist], dequantize(quantize(data[dist], N, K, f, Quantizer::kHqq), N, K, f), N, K);
      std::printf("[ report ] %-8s %-15s %10.5f %10.5f %9.3f\n", quant_format_name(f).c_str(), names[dist], rtn_err[i],
                  hqq_err[i], hqq_err[i] / rtn_err[i]);
      EXPECT_LE(hqq_err[i], rtn_err[i] * (1.0 + 1e-12)) << quant_format_name(f) << " " << names[dist];
    }
    // Fewer bits, more error (q8 < q4 g64 < q3 g64 < q2 g16), for both quantizers.
    for (const double* e : {rtn_err, hqq_err}) {
      EXPECT_LT(e[0], e[1]);
      EXPECT_LT(e[1], e[3]);
      EXPECT_LT(e[3], e[4]);
    }
  }
}

}  // namespace
}  // namespace moe
