// attention() against the float64 reference: head layouts (MHA and GQA), head sizes, prefill
// and decode, windows; plus exact window-edge and GQA-mapping checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "kernels/cpu/attention.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

struct Case {
  int64_t T, pos0, n_heads, n_kv_heads, head_dim, capacity, window;
};

// f32 scores carry a relative error ~head_dim * 2^-24 of sum |q k| * scale; softmax turns a
// score error ds into relative weight errors ~ds, moving the output by ~ds * max|v|; the f32
// weighted sum adds ~n_keys * 2^-24 * max|v|. ref::attention's tol_scale is
// (1 + max scaled sum|q k|) * max|v|; 1e-5 of it bounds all of these for these sizes.
void check(std::mt19937& rng, const Case& c) {
  const auto q = ref::normal(rng, static_cast<size_t>(c.T * c.n_heads * c.head_dim));
  const auto k = ref::normal(rng, static_cast<size_t>(c.n_kv_heads * c.capacity * c.head_dim));
  const auto v = ref::normal(rng, k.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> out(q.size());
  ref::poison(out);
  cpu::attention(q.data(), c.T, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, k.data(), v.data(), c.capacity, c.window,
                 scale, out.data());
  std::vector<double> want, tol;
  ref::attention(q.data(), c.T, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, k.data(), v.data(), c.capacity, c.window,
                 scale, want, tol);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], want[i], 1e-5 * tol[i / static_cast<size_t>(c.head_dim)] + 1e-6) << "element " << i;
}

using AttnParam = std::tuple<std::tuple<int64_t, int64_t>, int64_t, int64_t>;  // heads, head_dim, T
class AttentionTest : public ::testing::TestWithParam<AttnParam> {};

TEST_P(AttentionTest, MatchesReference) {
  const auto [heads, head_dim, T] = GetParam();
  const auto [n_heads, n_kv] = heads;
  std::mt19937 rng(static_cast<uint32_t>(41 + n_heads * 1000 + n_kv * 100 + head_dim + T * 7));
  for (const int64_t pos0 : {0, 5, 40}) {
    for (const int64_t window : {0, 1, 3, 16}) {
      SCOPED_TRACE("pos0=" + std::to_string(pos0) + " window=" + std::to_string(window));
      check(rng, Case{T, pos0, n_heads, n_kv, head_dim, pos0 + T + 3, window});
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Combine(::testing::Values(std::make_tuple(int64_t{4}, int64_t{4}),
                                                              std::make_tuple(int64_t{8}, int64_t{2}),
                                                              std::make_tuple(int64_t{6}, int64_t{1})),
                                            ::testing::Values(8, 64, 128), ::testing::Values(1, 3, 17)),
                         [](const ::testing::TestParamInfo<AttnParam>& p) {
                           const auto& h = std::get<0>(p.param);
                           std::string name = "H";  // built by appending: GCC 12 -Wrestrict misfires on "lit" + string
                           name += std::to_string(std::get<0>(h));
                           name += "_KV";
                           name += std::to_string(std::get<1>(h));
                           name += "_D";
                           name += std::to_string(std::get<1>(p.param));
                           name += "_T";
                           name += std::to_string(std::get<2>(p.param));
                           return name;
                         });

// Long prefill and long decode context: the parallel path.
TEST(Attention, LongContext) {
  std::mt19937 rng(42);
  check(rng, Case{64, 0, 8, 2, 64, 64, 0});
  check(rng, Case{1, 500, 8, 2, 128, 512, 0});
  check(rng, Case{32, 200, 8, 2, 64, 256, 100});
}

// Query at position 9 with window w sees keys 9 - w + 1 .. 9. Key 5 alone matches q (score
// 100 against 0 for all others) and carries v = 5; keys 6..9 carry v = 6..9. With window 4
// key 5 is exactly `window` back and invisible: out = mean(6..9) = 7.5. With window 5 it is
// visible and dominates: out ~ 5.
TEST(Attention, WindowEdge) {
  const int64_t head_dim = 8, capacity = 12, pos0 = 9;
  std::vector<float> q(head_dim, 0.0f), k(capacity * head_dim, 0.0f), v(capacity * head_dim, 0.0f);
  q[0] = 10.0f;
  k[5 * head_dim] = 10.0f;
  for (int64_t j = 0; j < capacity; ++j)
    for (int64_t i = 0; i < head_dim; ++i) v[static_cast<size_t>(j * head_dim + i)] = static_cast<float>(j);
  std::vector<float> out(head_dim);
  for (const int64_t window : {4, 5, 0}) {
    ref::poison(out);
    cpu::attention(q.data(), 1, pos0, 1, 1, head_dim, k.data(), v.data(), capacity, window, 1.0f, out.data());
    for (int64_t i = 0; i < head_dim; ++i) {
      if (window == 4)
        EXPECT_NEAR(out[static_cast<size_t>(i)], 7.5f, 1e-5f) << "key 5 must be outside window 4";
      else
        EXPECT_NEAR(out[static_cast<size_t>(i)], 5.0f, 1e-5f) << "key 5 must be visible, window " << window;
    }
  }
}

// With 8 query heads over 2 kv heads, heads 0-3 read kv head 0 and heads 4-7 kv head 1: give
// each kv head constant values 100 * (kv + 1) so every output is that constant.
TEST(Attention, GqaMapping) {
  std::mt19937 rng(43);
  const int64_t n_heads = 8, n_kv = 2, head_dim = 16, capacity = 8, T = 3, pos0 = 4;
  const auto q = ref::normal(rng, static_cast<size_t>(T * n_heads * head_dim));
  const auto k = ref::normal(rng, static_cast<size_t>(n_kv * capacity * head_dim));
  std::vector<float> v(k.size());
  for (int64_t kv = 0; kv < n_kv; ++kv)
    std::fill(v.begin() + kv * capacity * head_dim, v.begin() + (kv + 1) * capacity * head_dim,
              100.0f * static_cast<float>(kv + 1));
  std::vector<float> out(q.size());
  ref::poison(out);
  cpu::attention(q.data(), T, pos0, n_heads, n_kv, head_dim, k.data(), v.data(), capacity, 0, 0.25f, out.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t i = 0; i < head_dim; ++i)
        EXPECT_NEAR(out[static_cast<size_t>((t * n_heads + h) * head_dim + i)], 100.0f * static_cast<float>(h / 4 + 1),
                    1e-3f)
            << "t " << t << " head " << h;
}

// The first query of a prefill from position 0 sees only key 0: out = v[0] exactly.
TEST(Attention, FirstPositionSeesOnlyItself) {
  std::mt19937 rng(44);
  const int64_t head_dim = 64, capacity = 4;
  const auto q = ref::normal(rng, 2 * head_dim);
  const auto k = ref::normal(rng, capacity * head_dim);
  const auto v = ref::normal(rng, capacity * head_dim);
  std::vector<float> out(q.size());
  ref::poison(out);
  cpu::attention(q.data(), 2, 0, 1, 1, head_dim, k.data(), v.data(), capacity, 0, 0.125f, out.data());
  for (int64_t i = 0; i < head_dim; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], v[static_cast<size_t>(i)]);
}

}  // namespace
}  // namespace moe
