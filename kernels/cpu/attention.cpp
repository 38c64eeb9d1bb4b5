// Causal grouped-query attention over a paged KV cache; contract in attention.h.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/common/thread_pool.h"

namespace moe::cpu {
namespace {

// Independent partial sums per q.k dot (vectorisable without -ffast-math).
constexpr int64_t kLanes = 8;
// Below this many multiply-adds (about T * n_heads * keys * head_dim) stay on one thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 15;

float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0] + tail;
}

// Calls f(j0, n, keys, values) for each run of visible keys [first, last] that is contiguous in
// one block: keys j0 .. j0 + n - 1 at keys/values (n rows of head_dim floats).
template <class F>
void for_each_key_run(const PagedKv& kv, const int32_t* table, int64_t kv_head, int64_t first, int64_t last, F&& f) {
  const int64_t bs = kv.block_size, d = kv.head_dim;
  for (int64_t j = first; j <= last;) {
    const int64_t block = table[j / bs], row = j % bs;
    const int64_t n = std::min(bs - row, last - j + 1);
    const int64_t offset = ((block * kv.n_kv_heads + kv_head) * bs + row) * d;
    f(j, n, kv.k + offset, kv.v + offset);
    j += n;
  }
}

}  // namespace

void attention(const float* q, int64_t T, int64_t n_heads, const PagedKv& kv, const int32_t* positions,
               const int32_t* const* tables, int64_t window, float scale, float* out) {
  assert(kv.n_kv_heads > 0 && n_heads % kv.n_kv_heads == 0 && kv.block_size > 0);
  const int64_t group = n_heads / kv.n_kv_heads, head_dim = kv.head_dim;
  int64_t max_keys = 0, work_keys = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t keys = window > 0 ? std::min<int64_t>(window, positions[t] + 1) : positions[t] + 1;
    max_keys = std::max(max_keys, keys);
    work_keys += keys;
  }
  const bool parallel = work_keys * n_heads * head_dim >= kMinParallelWork;
  parallel_for(T * n_heads, parallel, [&](int64_t begin, int64_t end) {
    // Per-thread score row, kept across calls: no allocation once it has grown.
    thread_local std::vector<float> probs;
    if (probs.size() < static_cast<size_t>(max_keys)) probs.resize(static_cast<size_t>(max_keys));
    for (int64_t th = begin; th < end; ++th) {
      {
        const int64_t t = th / n_heads, h = th % n_heads;
        const int64_t pos = positions[t];
        // Visible keys: first .. pos (window > 0: exactly `window` keys ending at pos).
        const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
        const float* qv = q + (t * n_heads + h) * head_dim;
        const int64_t kv_head = h / group;

        float max_score = -std::numeric_limits<float>::infinity();
        for_each_key_run(kv, tables[t], kv_head, first, pos,
                         [&](int64_t j0, int64_t n, const float* keys, const float*) {
                           for (int64_t j = 0; j < n; ++j) {
                             const float s = dot(qv, keys + j * head_dim, head_dim) * scale;
                             probs[static_cast<size_t>(j0 - first + j)] = s;
                             max_score = std::max(max_score, s);
                           }
                         });
        const int64_t n_keys = pos - first + 1;
        float sum = 0.0f;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float e = std::exp(probs[static_cast<size_t>(j)] - max_score);
          probs[static_cast<size_t>(j)] = e;
          sum += e;
        }
        for (int64_t j = 0; j < n_keys; ++j) probs[static_cast<size_t>(j)] /= sum;

        float* o = out + (t * n_heads + h) * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for_each_key_run(kv, tables[t], kv_head, first, pos,
                         [&](int64_t j0, int64_t n, const float*, const float* values) {
                           for (int64_t j = 0; j < n; ++j) {
                             const float p = probs[static_cast<size_t>(j0 - first + j)];
                             const float* v = values + j * head_dim;
                             for (int64_t i = 0; i < head_dim; ++i) o[i] += p * v[i];
                           }
                         });
      }
    }
  });
}

void attention(const float* q, int64_t T, int64_t pos0, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t capacity, int64_t window, float scale, float* out) {
  assert(pos0 + T <= capacity);
  const int32_t block0 = 0;
  std::vector<int32_t> positions(static_cast<size_t>(T));
  std::vector<const int32_t*> tables(static_cast<size_t>(T), &block0);
  for (int64_t t = 0; t < T; ++t) positions[static_cast<size_t>(t)] = static_cast<int32_t>(pos0 + t);
  const PagedKv kv{k_cache, v_cache, n_kv_heads, head_dim, capacity};
  attention(q, T, n_heads, kv, positions.data(), tables.data(), window, scale, out);
}

}  // namespace moe::cpu
