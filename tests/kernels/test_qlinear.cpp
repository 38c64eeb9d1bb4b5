// qlinear() and qswiglu() against a float64 reference that decodes every block from its bytes
// with plain scalar code, for every format and group size, on every SIMD path this machine has
// (AVX-512, AVX2, portable: lowered through qlinear_isa.h); plus bit-exact independence of the
// result from the token count and the thread count.
//
// q8 and q4 take the integer path on AVX2 / AVX-512 (x quantized per group to int8; qlinear_isa.h),
// checked against the same reference with a bound derived from the rounding of x (int_bound);
// the f32 path (portable, q3, q2, or forced by MOE_QLINEAR_FLOAT=1 / qlinear_set_float) keeps
// the f32 tolerance alone.
//
// The blocks are written here straight from the layout of quant_format.h (random codes, scales
// and zeros), so these tests do not depend on the quantizers.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/qlinear.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/quant_format.h"
#include "tests/kernels/qlinear_reference.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

using cpu::QIsa;
using namespace qref;  // NOLINT(google-build-using-namespace): the shared test helpers

// Whether qlinear takes the integer path for format f on isa (qlinear_isa.h).
bool uses_int(QuantFormat f, QIsa isa) {
  return !cpu::qlinear_float_forced() && isa != QIsa::kPortable &&
         (f.type == QuantType::kQ8 || f.type == QuantType::kQ4);
}

void expect_qlinear_matches(const std::vector<float>& x, int64_t T, int64_t K, const std::vector<uint8_t>& w,
                            QuantFormat f, int64_t N, WeightRef bias, const IsaList& isas) {
  std::vector<double> want, mag;
  ref_qlinear(x.data(), T, K, w.data(), f, N, bias, want, mag);
  const std::vector<double> err = int_bound(x.data(), T, K, w.data(), f, N);
  std::vector<float> y(static_cast<size_t>(T * N));
  for (const QIsa isa : isas.isas) {
    const bool int_path = uses_int(f, isa);
    SCOPED_TRACE(std::string("isa=") + cpu::qisa_name(isa) + (int_path ? " (int8)" : " (f32)"));
    cpu::qisa_set(isa);
    ref::poison(y);
    cpu::qlinear(x.data(), T, K, w.data(), f, N, bias, y.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], want[i], tolerance(mag[i]) + (int_path ? err[i] : 0.0)) << "element " << i;
  }
}

constexpr QuantType kTypes[] = {QuantType::kQ8, QuantType::kQ4, QuantType::kQ3, QuantType::kQ2};

using QLinearParam = std::tuple<QuantType, int>;  // type, group size
class QLinearTest : public ::testing::TestWithParam<QLinearParam> {};

TEST_P(QLinearTest, MatchesReference) {
  const QuantFormat f{std::get<0>(GetParam()), std::get<1>(GetParam())};
  const int64_t g = f.group_size;
  std::mt19937 rng(static_cast<uint32_t>(100 * static_cast<int>(f.type) + g));
  const IsaList isas;
  for (const int64_t K : {g, 3 * g, 7 * g, int64_t{4096}}) {
    for (const int64_t N : {int64_t{1}, int64_t{5}, int64_t{37}, int64_t{300}}) {
      const auto w = random_weights(rng, f, N, K);
      for (const int64_t T : {int64_t{1}, int64_t{2}, int64_t{17}}) {
        SCOPED_TRACE("K=" + std::to_string(K) + " N=" + std::to_string(N) + " T=" + std::to_string(T));
        const auto x = ref::normal(rng, static_cast<size_t>(T * K));
        expect_qlinear_matches(x, T, K, w, f, N, WeightRef{}, isas);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QLinearTest,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::Values(16, 32, 64, 128, 256)),
                         [](const ::testing::TestParamInfo<QLinearParam>& p) {
                           return format_name(QuantFormat{std::get<0>(p.param), std::get<1>(p.param)});
                         });

TEST(QLinear, ReportsSimdPaths) {
  const IsaList isas;
  std::string names;
  for (const QIsa i : isas.isas) names += std::string(" ") + cpu::qisa_name(i);
  std::printf("qlinear SIMD paths tested on this machine:%s; avx512 integer path: %s; f32 forced: %s\n", names.c_str(),
              cpu::qisa_has_vnni() ? "vnni" : "avx2", cpu::qlinear_float_forced() ? "yes" : "no");
  EXPECT_EQ(cpu::qisa_current(), cpu::qisa_best());
}

// Forces the f32 path for a scope, restoring the previous setting.
struct ForceFloat {
  bool saved;
  ForceFloat() : saved(cpu::qlinear_set_float(true)) {}
  ~ForceFloat() { cpu::qlinear_set_float(saved); }
};

// MOE_QLINEAR_FLOAT=1 (and only "1") asks for the f32 path.
TEST(QLinear, FloatEnvironmentVariable) {
  const char* old = std::getenv("MOE_QLINEAR_FLOAT");
  const std::string saved = old != nullptr ? old : "";
  setenv("MOE_QLINEAR_FLOAT", "1", 1);
  EXPECT_TRUE(cpu::qlinear_float_from_env());
  setenv("MOE_QLINEAR_FLOAT", "0", 1);
  EXPECT_FALSE(cpu::qlinear_float_from_env());
  unsetenv("MOE_QLINEAR_FLOAT");
  EXPECT_FALSE(cpu::qlinear_float_from_env());
  if (old != nullptr) setenv("MOE_QLINEAR_FLOAT", saved.c_str(), 1);
}

// With the f32 path forced, q8 and q4 meet the f32 tolerance alone on every ISA; released, AVX2
// and AVX-512 take the integer path again (other bits), the portable ISA stays on f32.
TEST(QLinear, FloatFallbackForQ8AndQ4) {
  std::mt19937 rng(11);
  const IsaList isas;
  const int64_t K = 512, N = 41;
  for (const QuantFormat f : {QuantFormat{QuantType::kQ8, 64}, QuantFormat{QuantType::kQ4, 32}}) {
    const auto w = random_weights(rng, f, N, K);
    for (const int64_t T : {int64_t{1}, int64_t{4}}) {
      SCOPED_TRACE(format_name(f) + " T=" + std::to_string(T));
      const auto x = ref::normal(rng, static_cast<size_t>(T * K));
      std::vector<float> yf(static_cast<size_t>(T * N)), yi(yf.size());
      for (const QIsa isa : isas.isas) {
        SCOPED_TRACE(std::string("isa=") + cpu::qisa_name(isa));
        cpu::qisa_set(isa);
        {
          const ForceFloat force;
          EXPECT_FALSE(uses_int(f, isa));
          expect_qlinear_matches(x, T, K, w, f, N, WeightRef{}, isas);
          cpu::qisa_set(isa);
          cpu::qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, yf.data());
        }
        cpu::qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, yi.data());
        const bool same = std::memcmp(yf.data(), yi.data(), sizeof(float) * yf.size()) == 0;
        if (!cpu::qlinear_float_forced()) {
          EXPECT_EQ(same, isa == QIsa::kPortable);
        }
      }
    }
  }
}

TEST(QLinear, BiasOfEachDtype) {
  std::mt19937 rng(7);
  const IsaList isas;
  const int64_t K = 192, N = 29;
  for (const QuantFormat f : {QuantFormat{QuantType::kQ4, 64}, QuantFormat{QuantType::kQ3, 32}}) {
    const auto w = random_weights(rng, f, N, K);
    for (const DType bt : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (const int64_t T : {int64_t{1}, int64_t{3}}) {
        SCOPED_TRACE(format_name(f) + " bias dtype " + std::to_string(static_cast<int>(bt)) +
                     " T=" + std::to_string(T));
        const auto x = ref::normal(rng, static_cast<size_t>(T * K));
        const ref::Weights b(ref::normal(rng, static_cast<size_t>(N)), bt);
        expect_qlinear_matches(x, T, K, w, f, N, b.ref(), isas);
      }
    }
  }
}

// Each token row of a T = 17 batch equals the same row computed alone (T = 1 takes the packed
// decode path, T > 1 the unpacked prefill path), bit for bit, on every SIMD path.
TEST(QLinear, TokenRowDoesNotDependOnT) {
  std::mt19937 rng(8);
  const IsaList isas;
  const int64_t K = 1024, N = 67, T = 17;
  for (const QuantType t : kTypes) {
    for (const int g : {16, 64, 256}) {
      const QuantFormat f{t, g};
      const auto w = random_weights(rng, f, N, K);
      const auto x = ref::normal(rng, static_cast<size_t>(T * K));
      for (const QIsa isa : isas.isas) {
        SCOPED_TRACE(format_name(f) + " isa=" + cpu::qisa_name(isa));
        cpu::qisa_set(isa);
        std::vector<float> batch(static_cast<size_t>(T * N)), one(static_cast<size_t>(N)), two(2 * N);
        cpu::qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, batch.data());
        for (int64_t r = 0; r < T; ++r) {
          cpu::qlinear(x.data() + r * K, 1, K, w.data(), f, N, WeightRef{}, one.data());
          ASSERT_EQ(0, std::memcmp(one.data(), batch.data() + r * N, sizeof(float) * N)) << "token row " << r;
        }
        cpu::qlinear(x.data() + 5 * K, 2, K, w.data(), f, N, WeightRef{}, two.data());
        ASSERT_EQ(0, std::memcmp(two.data(), batch.data() + 5 * N, sizeof(float) * 2 * N));
      }
    }
  }
}

// Large enough for the parallel path; 1 and 2 threads give the same bits.
TEST(QLinear, SameResultWithOneAndTwoThreads) {
  std::mt19937 rng(9);
  const IsaList isas;
  const int64_t K = 2048, N = 301;
  const int saved = omp_get_max_threads();
  for (const QuantFormat f : {QuantFormat{QuantType::kQ8, 32}, QuantFormat{QuantType::kQ4, 128},
                              QuantFormat{QuantType::kQ3, 64}, QuantFormat{QuantType::kQ2, 16}}) {
    const auto w = random_weights(rng, f, N, K);
    for (const int64_t T : {int64_t{1}, int64_t{3}}) {
      const auto x = ref::normal(rng, static_cast<size_t>(T * K));
      for (const QIsa isa : isas.isas) {
        SCOPED_TRACE(format_name(f) + " T=" + std::to_string(T) + " isa=" + cpu::qisa_name(isa));
        cpu::qisa_set(isa);
        std::vector<float> y1(static_cast<size_t>(T * N)), y2(static_cast<size_t>(T * N));
        omp_set_num_threads(1);
        cpu::qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, y1.data());
        omp_set_num_threads(2);
        cpu::qlinear(x.data(), T, K, w.data(), f, N, WeightRef{}, y2.data());
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), sizeof(float) * y1.size()));
      }
    }
  }
  omp_set_num_threads(saved);
}

// qswiglu against the float64 composition down(silu(gate x) * up x). The bound propagates the
// projection tolerance through silu(g) * u (|silu'| <= 1.1) into the down projection:
//   e_h = 1.1 |u| tol(gate) + |silu(g)| tol(up), |y - ref| <= tol(down) + sum_i |deq_down| e_h.
// Also bit-exact against the same composition of the kernels themselves (qlinear, silu_mul).
TEST(QSwiglu, MatchesReferenceComposition) {
  std::mt19937 rng(10);
  const IsaList isas;
  const int64_t H = 256, I = 96;
  const QuantFormat gf{QuantType::kQ4, 64}, uf{QuantType::kQ3, 32}, df{QuantType::kQ2, 16};
  const auto gate = random_weights(rng, gf, I, H);
  const auto up = random_weights(rng, uf, I, H);
  const auto down = random_weights(rng, df, H, I);
  for (const int64_t T : {int64_t{1}, int64_t{5}}) {
    const auto x = ref::normal(rng, static_cast<size_t>(T * H));
    std::vector<double> g, gm, u, um;
    ref_qlinear(x.data(), T, H, gate.data(), gf, I, WeightRef{}, g, gm);
    ref_qlinear(x.data(), T, H, up.data(), uf, I, WeightRef{}, u, um);
    const std::vector<double> g_int = int_bound(x.data(), T, H, gate.data(), gf, I);
    const std::vector<double> u_int = int_bound(x.data(), T, H, up.data(), uf, I);
    std::vector<double> h(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      const double silu = g[i] / (1.0 + std::exp(-g[i]));
      h[i] = silu * u[i];
    }
    std::vector<double> want, mag;
    ref_qlinear(h.data(), T, I, down.data(), df, H, WeightRef{}, want, mag);
    // err_in[t, h] for the gate / up paths of one ISA.
    const auto input_error = [&](QIsa isa) {
      std::vector<double> eh(g.size()), err_in;
      for (size_t i = 0; i < g.size(); ++i) {
        const double silu = g[i] / (1.0 + std::exp(-g[i]));
        const double eg = tolerance(gm[i]) + (uses_int(gf, isa) ? g_int[i] : 0.0);
        const double eu = tolerance(um[i]) + (uses_int(uf, isa) ? u_int[i] : 0.0);
        eh[i] = 1.1 * std::fabs(u[i]) * eg + (std::fabs(silu) + 1.1 * eg) * eu;
      }
      std::vector<double> abs_w(static_cast<size_t>(H * I));
      for (int64_t n = 0; n < H; ++n) {
        const auto row = ref_row(down.data(), df, I, n);
        for (int64_t i = 0; i < I; ++i) abs_w[static_cast<size_t>(n * I + i)] = std::fabs(row[static_cast<size_t>(i)]);
      }
      err_in.assign(static_cast<size_t>(T * H), 0.0);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < H; ++n)
          for (int64_t i = 0; i < I; ++i)
            err_in[static_cast<size_t>(t * H + n)] +=
                abs_w[static_cast<size_t>(n * I + i)] * eh[static_cast<size_t>(t * I + i)];
      return err_in;
    };
    for (const QIsa isa : isas.isas) {
      const std::vector<double> err_in = input_error(isa);
      SCOPED_TRACE("T=" + std::to_string(T) + " isa=" + cpu::qisa_name(isa));
      cpu::qisa_set(isa);
      std::vector<float> scratch(static_cast<size_t>(2 * T * I)), y(static_cast<size_t>(T * H));
      ref::poison(scratch);
      ref::poison(y);
      cpu::qswiglu(x.data(), T, H, gate.data(), gf, up.data(), uf, down.data(), df, I, scratch.data(), y.data());
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], want[i], tolerance(mag[i]) + err_in[i]) << "element " << i;

      std::vector<float> gk(static_cast<size_t>(T * I)), uk(gk.size()), yk(y.size());
      cpu::qlinear(x.data(), T, H, gate.data(), gf, I, WeightRef{}, gk.data());
      cpu::qlinear(x.data(), T, H, up.data(), uf, I, WeightRef{}, uk.data());
      cpu::silu_mul(gk.data(), uk.data(), T * I, gk.data());
      cpu::qlinear(gk.data(), T, I, down.data(), df, H, WeightRef{}, yk.data());
      EXPECT_EQ(0, std::memcmp(y.data(), yk.data(), sizeof(float) * y.size()));
    }
  }
}

}  // namespace
}  // namespace moe
