// Softmax top-k expert selection; contract in routing.h.
#include "kernels/cpu/routing.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <vector>

namespace moe::cpu {

void softmax_topk(const float* logits, int64_t T, int64_t E, int64_t top_k, bool renormalize, int32_t* ids,
                  float* weights) {
  assert(E > 0 && top_k > 0 && top_k <= E);
  std::vector<float> p(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * E;
    const float max_logit = *std::max_element(l, l + E);
    float sum = 0.0f;
    for (int64_t e = 0; e < E; ++e) {
      p[static_cast<size_t>(e)] = std::exp(l[e] - max_logit);
      sum += p[static_cast<size_t>(e)];
    }
    for (float& v : p) v /= sum;

    // Descending p, equal p lower index first: a strict total order, so the chosen set and
    // its order are unique.
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int32_t a, int32_t b) {
      const float pa = p[static_cast<size_t>(a)];
      const float pb = p[static_cast<size_t>(b)];
      return pa > pb || (pa == pb && a < b);
    });

    int32_t* id = ids + t * top_k;
    float* w = weights + t * top_k;
    float chosen_sum = 0.0f;
    for (int64_t k = 0; k < top_k; ++k) {
      id[k] = order[static_cast<size_t>(k)];
      w[k] = p[static_cast<size_t>(id[k])];
      chosen_sum += w[k];
    }
    if (renormalize)
      for (int64_t k = 0; k < top_k; ++k) w[k] /= chosen_sum;
  }
}

}  // namespace moe::cpu
