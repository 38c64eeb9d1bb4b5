// The compute interface the forward pass is written against. A backend owns its memory
// (activations, KV cache, resident weights) and runs the handful of ops a MoE decoder needs.
// The CPU backend (reference) and the CUDA backend implement it; the forward pass in
// runtime/engine is written once over it.
//
// Conventions: activations are F32, row-major, outermost dimension = tokens. Weights keep
// their stored dtype (F32/F16/BF16 today) with shape (out, in) as in PyTorch. Ops are issued in
// order; a backend may run them asynchronously, and copy_to_host / synchronize are the only
// points where the host waits.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "runtime/backend/device_expert_slots.h"
#include "runtime/backend/kv_batch.h"
#include "runtime/backend/tensor.h"
#include "runtime/io/tensor_view.h"

namespace moe {

// The three weights of one SwiGLU MLP (dense MLP, shared expert or one routed expert):
// down(silu(gate(x)) * up(x)).
struct MlpWeights {
  Tensor gate;  // (I, H)
  Tensor up;    // (I, H)
  Tensor down;  // (H, I)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  // A buffer owned by the backend until it is destroyed. Contents are undefined.
  virtual Tensor alloc(DType dtype, std::initializer_list<int64_t> shape) = 0;
  // Makes a stored weight usable by this backend's ops. CPU: aliases the (mmapped) host data, no
  // copy, except q8/q4 matrices its kernels want tiled (a rearranged copy) and misaligned data.
  // A device backend copies it into device memory.
  virtual Tensor load_weight(const TensorView& w) = 0;
  // Makes a weight that already sits in memory this backend's ops can address (an expert read
  // into a host slot by the offloading tiers, say) ready for those ops, in place: a backend may
  // rewrite a quantized weight's bytes into its own layout of the same size (the CPU backend
  // interleaves q4/q8 rows for its kernels). Returns the tensor to hand to the ops; the bytes
  // are no longer in the stored layout afterwards. The default changes nothing.
  virtual Tensor adopt_weight_in_place(Tensor w) { return w; }
  virtual void copy_from_host(const void* src, uint64_t bytes, Tensor& dst) = 0;
  // Waits for queued work, then copies.
  virtual void copy_to_host(const Tensor& src, void* dst, uint64_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- the VRAM tier of expert offloading (optional; runtime/backend/device_expert_slots.h) ----
  // `slots` device slots of `slot_bytes` each (from the backend's memory) with an asynchronous
  // host -> slot copy queue. Null (the default) for backends that compute from host memory.
  virtual std::unique_ptr<DeviceExpertSlots> make_expert_slots(int64_t slots, uint64_t slot_bytes) {
    (void)slots, (void)slot_bytes;
    return nullptr;
  }
  // The device's memory now (total, free); zeros for host backends.
  virtual DeviceMemory device_memory() const { return {}; }

  // ---- ops ----
  // out (T, H) = rows of table (V, H) picked by ids (T) (I32, already range-checked).
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  // Row-wise RMSNorm with weight w (D); x viewed as (numel / D, D). y may alias x.
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) = 0;
  // y (T, N) = x (T, K) w^T (+ bias (N) when bias is non-empty).
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) = 0;
  // RoPE in place on x (T, n_heads * head_dim); row t at position positions[t] (host, T values).
  virtual void rope(Tensor& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions, float theta) = 0;
  // x = clamp(x, -limit, limit)
  virtual void clamp(Tensor& x, float limit) = 0;
  // k, v (T, n_kv * head_dim): row t written into the paged caches (num_blocks, n_kv, block_size,
  // head_dim) at its sequence's position batch.positions[t] (runtime/backend/kv_batch.h). The batch's
  // block ids must lie in the cache (the forward pass checks them once per step).
  virtual void kv_append(const Tensor& k, const Tensor& v, const KvBatch& batch, Tensor& k_cache, Tensor& v_cache) = 0;
  // Causal GQA attention of q (T, n_heads * head_dim): row t attends to the keys of its own
  // sequence at positions <= batch.positions[t] (window > 0: its last `window` keys), read from the
  // paged caches through the sequence's block table. out (T, n_heads * head_dim).
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const KvBatch& batch,
                         int64_t n_heads, int64_t window, float scale, Tensor& out) = 0;
  // x = 0
  virtual void fill_zero(Tensor& x) = 0;
  // x += y
  virtual void add(Tensor& x, const Tensor& y) = 0;
  // Router: softmax over logits (T, E), top-k, optional renormalisation; results on the host
  // (ids and weights, T * top_k each), because expert dispatch is decided on the host.
  virtual void route_topk(const Tensor& logits, int64_t top_k, bool renormalize, std::span<int32_t> ids,
                          std::span<float> weights) = 0;
  // y (n, H) = down(silu(gate(x)) * up(x)) for x (n, H): a dense MLP, a shared expert, or one
  // routed expert applied to the rows routed to it.
  virtual void swiglu_mlp(const Tensor& x, const MlpWeights& w, Tensor& y) = 0;
  // out (n, H) = x rows picked by `rows` (host indices into x's outer dimension).
  virtual void gather_rows(const Tensor& x, std::span<const int32_t> rows, Tensor& out) = 0;
  // acc[rows[i], :] += scale[i] * x[i, :]
  virtual void scatter_add_rows(const Tensor& x, std::span<const int32_t> rows, std::span<const float> scale,
                                Tensor& acc) = 0;
  // acc[t, :] += sigmoid(gate_logit[t]) * x[t, :]; gate_logit (T, 1). (Qwen2-MoE shared expert)
  virtual void add_sigmoid_gated(const Tensor& x, const Tensor& gate_logit, Tensor& acc) = 0;
};

}  // namespace moe
