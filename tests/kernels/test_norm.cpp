// rms_norm() against the float64 reference: every weight dtype, awkward widths, row counts on
// both sides of the parallel threshold, and in-place use.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cpu/norm.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

// f32 sum of squares of D terms, sqrt, divide and two multiplies against f64: relative error
// a small multiple of D * 2^-24 at worst (typically ~sqrt(D) * 2^-24); 1e-5 relative to the
// output magnitude covers D = 4099 with margin.
void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-6) << "element " << i;
}

TEST(RmsNorm, MatchesReference) {
  std::mt19937 rng(21);
  for (const DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const int64_t D : {1, 7, 33, 100, 1000, 4099}) {
      for (const int64_t rows : {1, 3, 17, 64}) {
        SCOPED_TRACE("dtype=" + std::string(dtype_name(dt)) + " D=" + std::to_string(D) +
                     " rows=" + std::to_string(rows));
        const auto x = ref::normal(rng, static_cast<size_t>(rows * D));
        const ref::Weights w(ref::uniform(rng, static_cast<size_t>(D), 0.5f, 1.5f), dt);
        const float eps = 1e-6f;
        std::vector<float> y(x.size());
        ref::poison(y);
        cpu::rms_norm(x.data(), rows, D, w.ref(), eps, y.data());
        expect_close(y, ref::rms_norm(x.data(), rows, D, w.ref(), eps));
      }
    }
  }
}

TEST(RmsNorm, InPlace) {
  std::mt19937 rng(22);
  for (const int64_t rows : {1, 64}) {
    const int64_t D = 128;
    auto x = ref::normal(rng, static_cast<size_t>(rows * D));
    const ref::Weights w(ref::uniform(rng, static_cast<size_t>(D), -2.0f, 2.0f), DType::kBF16);
    const auto want = ref::rms_norm(x.data(), rows, D, w.ref(), 1e-5f);
    cpu::rms_norm(x.data(), rows, D, w.ref(), 1e-5f, x.data());
    expect_close(x, want);
  }
}

// eps matters when the row is tiny: mean(x^2) ~ 1e-8 against eps = 1e-5.
TEST(RmsNorm, EpsDominatesSmallRows) {
  std::mt19937 rng(23);
  const int64_t D = 64;
  auto x = ref::uniform(rng, static_cast<size_t>(D), -1e-4f, 1e-4f);
  const ref::Weights w(ref::uniform(rng, static_cast<size_t>(D), 0.5f, 1.5f), DType::kF32);
  std::vector<float> y(x.size());
  ref::poison(y);
  cpu::rms_norm(x.data(), 1, D, w.ref(), 1e-5f, y.data());
  expect_close(y, ref::rms_norm(x.data(), 1, D, w.ref(), 1e-5f));
}

}  // namespace
}  // namespace moe
