// The reference backend: f32 arithmetic on the host over F32/F16/BF16 weights, multithreaded
// with OpenMP inside the kernels (kernels/cpu). Weights are used in place from the mmapped
// checkpoint (copied only when the file leaves one misaligned); activations live in an arena
// freed with the backend.
#pragma once

#include <cstdlib>
#include <memory>
#include <vector>

#include "runtime/backend/backend.h"

namespace moe {

class CpuBackend final : public Backend {
 public:
  // threads <= 0: OpenMP's default (all cores, or OMP_NUM_THREADS).
  explicit CpuBackend(int threads = 0);
  std::string name() const override;

  Tensor alloc(DType dtype, std::initializer_list<int64_t> shape) override;
  // Quantized q8/q4 matrices are rearranged into kTile16 (kernels/cpu/qtile.h) when the kernels
  // of this machine prefer it: a copy in the arena, the mapped file untouched.
  Tensor load_weight(const TensorView& w) override;
  // The same rearrangement, in place.
  Tensor adopt_weight_in_place(Tensor w) override;
  void copy_from_host(const void* src, uint64_t bytes, Tensor& dst) override;
  void copy_to_host(const Tensor& src, void* dst, uint64_t bytes) override;
  void synchronize() override {}

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) override;
  void rope(Tensor& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions, float theta) override;
  void clamp(Tensor& x, float limit) override;
  void kv_append(const Tensor& k, const Tensor& v, const KvBatch& batch, Tensor& k_cache, Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const KvBatch& batch, int64_t n_heads,
                 int64_t window, float scale, Tensor& out) override;
  void fill_zero(Tensor& x) override;
  void add(Tensor& x, const Tensor& y) override;
  void route_topk(const Tensor& logits, int64_t top_k, bool renormalize, std::span<int32_t> ids,
                  std::span<float> weights) override;
  void swiglu_mlp(const Tensor& x, const MlpWeights& w, Tensor& y) override;
  void gather_rows(const Tensor& x, std::span<const int32_t> rows, Tensor& out) override;
  void scatter_add_rows(const Tensor& x, std::span<const int32_t> rows, std::span<const float> scale,
                        Tensor& acc) override;
  void add_sigmoid_gated(const Tensor& x, const Tensor& gate_logit, Tensor& acc) override;

  int threads() const { return threads_; }
  // Weights whose mapped data was not aligned to their element size and were copied.
  int64_t realigned_weights() const { return realigned_weights_; }
  // Weights rearranged into kTile16 by load_weight.
  int64_t tiled_weights() const { return tiled_weights_; }

 private:
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  int threads_ = 1;
  int64_t realigned_weights_ = 0;
  int64_t tiled_weights_ = 0;
  std::vector<std::unique_ptr<void, FreeDeleter>> arena_;
  // swiglu_mlp intermediates, grown on first use and then reused (no allocation per step).
  std::vector<float> gate_buf_;
  std::vector<float> up_buf_;
  std::vector<float> scratch_;  // qswiglu intermediates
  std::vector<int64_t> positions_;
  std::vector<const int32_t*> row_tables_;  // attention: each row's block table
};

}  // namespace moe
