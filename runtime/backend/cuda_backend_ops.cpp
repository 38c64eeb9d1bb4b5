// The CUDA backend's ops: shape checks, then the kernels of kernels/cuda. Semantics are the CPU
// backend's (runtime/backend/cpu_backend.cpp), the reference the gpu tests compare against.
#include <algorithm>

#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_prefill.cuh"
#include "kernels/cuda/clamp.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/gemv_ggml.cuh"
#include "kernels/cuda/kv_append.cuh"
#include "kernels/cuda/residual_add.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/routing.cuh"
#include "kernels/cuda/rows.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "runtime/backend/cuda_backend.h"
#include "runtime/backend/cuda_backend_impl.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

void expect_f32(const Tensor& t, const char* op, const char* what) {
  MOE_CHECK(t.dtype == DType::kF32 && !t.quant && t.device == Device::kCuda, "cuda backend: ", op, ": ", what,
            " must be an f32 device tensor, found ", dtype_name(t.dtype), " ", shape_str(t),
            t.device == Device::kCuda ? "" : " on the host");
}

int to_int(int64_t v, const char* what) {
  MOE_CHECK(v >= 0 && v <= INT32_MAX, "cuda backend: ", what, " ", v, " out of range");
  return static_cast<int>(v);
}

bool same_storage(const cuda::WeightOperand& a, const cuda::WeightOperand& b) {
  return a.q == b.q && a.group == b.group && (a.q != cuda::QFormat::kNone || a.elem == b.elem) && a.n == b.n &&
         a.k == b.k;
}

// y (T, N) = x (T, K) w^T for any stored weight, into device f32 rows (no shape checks): the
// ggml kernels for ggml-typed weights, else the GEMV (T <= kGemvMaxTokens) or the GEMM, whose
// scratch is the start of `m`'s op scratch: the caller reserves it beforehand, so that this
// work_floats call does not move buffers the caller placed after it.
void product(CudaBackend::Impl& m, const float* x, int T, const Tensor& w, float* y) {
  if (is_ggml_weight(w)) {
    cuda::ggml_linear(x, T, ggml_operand(w, "swiglu_mlp", "weight"), cuda::BiasOperand{}, y, m.s());
    return;
  }
  const cuda::WeightOperand wo = weight_operand(w, "swiglu_mlp", "weight");
  if (T <= cuda::kGemvMaxTokens) {
    cuda::gemv(x, T, wo, cuda::BiasOperand{}, y, m.s());
    return;
  }
  cuda::gemm(x, T, wo, cuda::BiasOperand{}, y, m.work_floats(cuda::gemm_scratch_floats(T, wo)), m.s());
}

// linear() with a ggml-typed weight (kept in its stored layout).
void linear_ggml(CudaBackend::Impl& m, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  const cuda::GgmlWeight wo = ggml_operand(w, "linear", "weight");
  const int64_t tokens = x.dim(0), k = x.row_size();
  MOE_CHECK(w.rank == 2 && wo.k == k && y.dim(0) == tokens && y.row_size() == wo.n, "cuda backend: linear: x ",
            shape_str(x), " w ", shape_str(w), " y ", shape_str(y));
  const cuda::BiasOperand b = bias_operand(bias);
  MOE_CHECK(bias.empty() || bias.numel() == wo.n, "cuda backend: linear: bias ", shape_str(bias), " for ", wo.n,
            " outputs");
  const int T = to_int(tokens, "linear tokens");
  if (T == 0) return;
  m.begin_op(T);
  cuda::ggml_linear(x.as<const float>(), T, wo, b, y.as<float>(), m.s());
}

// swiglu_mlp() when any of its weights is ggml-typed. Gate and up of one ggml type: one fused
// kernel (silu(g) * u written once), then down. Otherwise (mixed storage): gate and up products
// into two buffers, silu_mul, down.
void swiglu_mlp_ggml(CudaBackend::Impl& m, const Tensor& x, const MlpWeights& w, Tensor& y) {
  auto cols = [](const Tensor& t) { return t.rank == 0 ? int64_t{1} : t.dim(t.rank - 1); };
  auto rows = [&](const Tensor& t) { return cols(t) == 0 ? int64_t{0} : t.numel() / cols(t); };
  for (const Tensor* t : {&w.gate, &w.up, &w.down})
    MOE_CHECK(t->device == Device::kCuda, "cuda backend: swiglu_mlp: weight ", shape_str(*t),
              " is not in device memory (load it with load_weight)");
  const int64_t tokens = x.dim(0), H = x.row_size(), I = rows(w.gate);
  MOE_CHECK(cols(w.gate) == H && cols(w.up) == H && rows(w.up) == I && rows(w.down) == H && cols(w.down) == I &&
                y.dim(0) == tokens && y.row_size() == H,
            "cuda backend: swiglu_mlp: x ", shape_str(x), " gate ", shape_str(w.gate), " up ", shape_str(w.up),
            " down ", shape_str(w.down), " y ", shape_str(y));
  const int T = to_int(tokens, "tokens");
  if (T == 0) return;
  m.begin_op(T);
  const bool fused = is_ggml_weight(w.gate) && is_ggml_weight(w.up) && w.gate.quant->type == w.up.quant->type;
  // Scratch layout: [GEMM scratch of the non-ggml products][h (T, I)][up (T, I), unfused only],
  // reserved at once so that no later work_floats call moves it.
  int64_t sn = 0;
  if (T > cuda::kGemvMaxTokens)
    for (const Tensor* t : {&w.gate, &w.up, &w.down})
      if (!is_ggml_weight(*t))
        sn = std::max(sn, cuda::gemm_scratch_floats(T, weight_operand(*t, "swiglu_mlp", "weight")));
  const int64_t hn = static_cast<int64_t>(T) * I;
  float* h = m.work_floats(sn + hn * (fused ? 1 : 2)) + sn;
  const float* xp = x.as<const float>();
  if (fused) {
    cuda::ggml_swiglu(xp, T, ggml_operand(w.gate, "swiglu_mlp", "gate"), ggml_operand(w.up, "swiglu_mlp", "up"), h,
                      m.s());
  } else {
    float* up = h + hn;
    product(m, xp, T, w.gate, h);
    product(m, xp, T, w.up, up);
    cuda::silu_mul(h, up, hn, h, m.s());
  }
  product(m, h, T, w.down, y.as<float>());
}

}  // namespace

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  expect_f32(out, "embedding", "out");
  MOE_CHECK(ids.dtype == DType::kI32 && ids.device == Device::kCuda,
            "cuda backend: embedding: ids must be I32 on the device");
  const int T = to_int(ids.numel(), "embedding tokens");
  if (is_ggml_weight(table)) {  // a GGUF token_embd kept in its block format
    const cuda::GgmlWeight g = ggml_operand(table, "embedding", "table");
    MOE_CHECK(table.rank == 2 && out.numel() >= T * g.k, "cuda backend: embedding: table ", shape_str(table), " out ",
              shape_str(out));
    impl_->begin_op(T);
    cuda::ggml_embedding(ids.as<const int32_t>(), T, g, out.as<float>(), impl_->s());
    return;
  }
  const cuda::WeightOperand t = weight_operand(table, "embedding", "table");
  MOE_CHECK(table.rank == 2 && out.numel() >= T * t.k, "cuda backend: embedding: table ", shape_str(table), " out ",
            shape_str(out));
  impl_->begin_op(T);
  cuda::embedding(ids.as<const int32_t>(), T, t, out.as<float>(), impl_->s());
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
  expect_f32(x, "rms_norm", "x");
  expect_f32(y, "rms_norm", "y");
  MOE_CHECK(!w.quant && w.device == Device::kCuda,
            "cuda backend: rms_norm: weight must be a device F32/F16/BF16 tensor");
  const int64_t d = w.numel();
  MOE_CHECK(d > 0 && x.numel() % d == 0 && y.numel() == x.numel(), "cuda backend: rms_norm: x ", shape_str(x), " y ",
            shape_str(y), " weight ", shape_str(w));
  impl_->begin_op(x.dim(0));
  cuda::rms_norm(x.as<const float>(), x.numel() / d, d, w.data, elem_of(w.dtype, "rms_norm", "weight"), eps,
                 y.as<float>(), impl_->s());
}

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  expect_f32(x, "linear", "x");
  expect_f32(y, "linear", "y");
  if (is_ggml_weight(w)) {
    linear_ggml(*impl_, x, w, bias, y);
    return;
  }
  const cuda::WeightOperand wo = weight_operand(w, "linear", "weight");
  const int64_t tokens = x.dim(0), k = x.row_size();
  MOE_CHECK(w.rank == 2 && wo.k == k && y.dim(0) == tokens && y.row_size() == wo.n, "cuda backend: linear: x ",
            shape_str(x), " w ", shape_str(w), " y ", shape_str(y));
  const cuda::BiasOperand b = bias_operand(bias);
  MOE_CHECK(bias.empty() || bias.numel() == wo.n, "cuda backend: linear: bias ", shape_str(bias), " for ", wo.n,
            " outputs");
  const int T = to_int(tokens, "linear tokens");
  if (T == 0) return;
  Impl& m = *impl_;
  m.begin_op(T);
  if (T <= cuda::kGemvMaxTokens) {
    cuda::gemv(x.as<const float>(), T, wo, b, y.as<float>(), m.s());
    return;
  }
  float* scratch = m.work_floats(cuda::gemm_scratch_floats(T, wo));
  cuda::gemm(x.as<const float>(), T, wo, b, y.as<float>(), scratch, m.s());
}

void CudaBackend::rope(Tensor& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions, float theta) {
  expect_f32(x, "rope", "x");
  MOE_CHECK(head_dim % 2 == 0 && x.row_size() == n_heads * head_dim, "cuda backend: rope: x ", shape_str(x), " for ",
            n_heads, " heads of ", head_dim);
  MOE_CHECK(static_cast<int64_t>(positions.size()) == x.dim(0), "cuda backend: rope: ", positions.size(),
            " positions for ", shape_str(x));
  if (positions.empty()) return;
  Impl& m = *impl_;
  const int32_t* pos = m.ring_copy(positions.data(), positions.size());
  m.begin_op(x.dim(0));
  cuda::rope(x.as<float>(), to_int(x.dim(0), "rope tokens"), to_int(n_heads, "heads"), to_int(head_dim, "head_dim"),
             pos, theta, m.s());
}

void CudaBackend::clamp(Tensor& x, float limit) {
  expect_f32(x, "clamp", "x");
  impl_->begin_op(x.dim(0));
  cuda::clamp(x.as<float>(), x.numel(), -limit, limit, impl_->s());
}

void CudaBackend::kv_append(const Tensor& k, const Tensor& v, const KvBatch& batch, Tensor& k_cache, Tensor& v_cache) {
  expect_f32(k, "kv_append", "k");
  expect_f32(v, "kv_append", "v");
  expect_f32(k_cache, "kv_append", "k_cache");
  expect_f32(v_cache, "kv_append", "v_cache");
  const int64_t tokens = k.dim(0);
  check_kv_batch(k_cache, batch, tokens, "cuda backend: kv_append");
  const int64_t n_kv = k_cache.dim(1), bs = k_cache.dim(2), head_dim = k_cache.dim(3);
  MOE_CHECK(k.row_size() == n_kv * head_dim && v.row_size() == n_kv * head_dim, "cuda backend: kv_append: k ",
            shape_str(k), " for cache ", shape_str(k_cache));
  if (tokens == 0) return;
  Impl& m = *impl_;
  // Each row's cache row (block * block_size + offset), read by the kernel from the ring.
  auto* slots = static_cast<int32_t*>(m.ring_alloc(static_cast<size_t>(tokens) * sizeof(int32_t)));
  for (int64_t t = 0; t < tokens; ++t) slots[t] = static_cast<int32_t>(batch.slot(t));
  m.begin_op(tokens);
  cuda::kv_append(k.as<const float>(), v.as<const float>(), to_int(tokens, "tokens"), to_int(n_kv, "kv heads"),
                  to_int(head_dim, "head_dim"), to_int(bs, "block size"), slots, k_cache.as<float>(),
                  v_cache.as<float>(), m.s());
}

void CudaBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const KvBatch& batch,
                            int64_t n_heads, int64_t window, float scale, Tensor& out) {
  expect_f32(q, "attention", "q");
  expect_f32(out, "attention", "out");
  const int64_t tokens = q.dim(0);
  check_kv_batch(k_cache, batch, tokens, "cuda backend: attention");
  cuda::AttentionShape a;
  a.n_heads = to_int(n_heads, "heads");
  a.n_kv = to_int(k_cache.dim(1), "kv heads");
  a.head_dim = to_int(k_cache.dim(3), "head_dim");
  a.block_size = to_int(k_cache.dim(2), "block size");
  a.max_seq_len = batch.max_seq_len;
  a.window = window;
  a.scale = scale;
  MOE_CHECK(a.n_kv > 0 && a.n_heads % a.n_kv == 0 && q.row_size() == n_heads * a.head_dim &&
                a.head_dim <= cuda::kAttentionMaxHeadDim,
            "cuda backend: attention: q ", shape_str(q), " cache ", shape_str(k_cache), " heads ", n_heads);
  if (tokens == 0) return;
  Impl& m = *impl_;
  // Sequences with a few rows (decode) share one decode launch over their rows; each longer
  // prefill chunk gets a prefill launch of its own. One ring allocation holds the block table and
  // the decode rows' arguments (a second one could wrap the ring over the first).
  int64_t decode_rows = 0;
  for (const KvSeqRows& s : batch.seqs)
    if (s.rows <= cuda::kDecodeAttentionMaxTokens) decode_rows += s.rows;
  const size_t n = static_cast<size_t>(decode_rows), n_table = batch.block_table.size();
  auto* table = static_cast<int32_t*>(m.ring_alloc((n_table + 3 * n) * sizeof(int32_t)));
  std::copy(batch.block_table.begin(), batch.block_table.end(), table);
  if (decode_rows > 0) {
    int32_t* rows = table + n_table;
    int32_t* positions = rows + n;
    int32_t* tables = positions + n;
    size_t i = 0;
    for (const KvSeqRows& s : batch.seqs) {
      if (s.rows > cuda::kDecodeAttentionMaxTokens) continue;
      for (int32_t r = 0; r < s.rows; ++r, ++i) {
        rows[i] = s.row0 + r;
        positions[i] = s.pos0 + r;
        tables[i] = s.table0;
      }
    }
    a.T = to_int(decode_rows, "attention decode rows");
    const cuda::DecodeRows dr{rows, positions, tables, table};
    m.begin_op(a.T);
    const int splits = cuda::attention_decode_splits(a, m.props.multiprocessors);
    float* scratch = m.work_floats(cuda::attention_decode_scratch_floats(a, splits));
    cuda::attention_decode(q.as<const float>(), k_cache.as<const float>(), v_cache.as<const float>(), a, dr, splits,
                           scratch, out.as<float>(), m.s());
  }
  const int64_t width = q.row_size();
  for (const KvSeqRows& s : batch.seqs) {
    if (s.rows <= cuda::kDecodeAttentionMaxTokens) continue;
    a.T = s.rows;
    m.begin_op(a.T);
    const cuda::PrefillSeq seq{s.pos0, table + s.table0};
    cuda::attention_prefill(q.as<const float>() + int64_t{s.row0} * width, k_cache.as<const float>(),
                            v_cache.as<const float>(), a, seq, out.as<float>() + int64_t{s.row0} * width, m.s());
  }
}

void CudaBackend::fill_zero(Tensor& x) {
  MOE_CHECK(x.device == Device::kCuda, "cuda backend: fill_zero: ", shape_str(x), " is not in device memory");
  impl_->begin_op(x.rank == 0 ? 1 : x.dim(0));
  MOE_CUDA_CHECK(cudaMemsetAsync(x.data, 0, x.nbytes(), impl_->s()));
}

void CudaBackend::add(Tensor& x, const Tensor& y) {
  expect_f32(x, "add", "x");
  expect_f32(y, "add", "y");
  MOE_CHECK(x.numel() == y.numel(), "cuda backend: add: ", shape_str(x), " + ", shape_str(y));
  impl_->begin_op(x.dim(0));
  cuda::add_inplace(x.as<float>(), y.as<const float>(), x.numel(), impl_->s());
}

void CudaBackend::route_topk(const Tensor& logits, int64_t top_k, bool renormalize, std::span<int32_t> ids,
                             std::span<float> weights) {
  expect_f32(logits, "route_topk", "logits");
  const int64_t tokens = logits.dim(0), experts = logits.row_size();
  MOE_CHECK(
      static_cast<int64_t>(ids.size()) >= tokens * top_k && static_cast<int64_t>(weights.size()) >= tokens * top_k,
      "cuda backend: route_topk: output spans too small");
  MOE_CHECK(experts >= 1 && experts <= cuda::kRoutingMaxExperts && top_k >= 1 && top_k <= experts,
            "cuda backend: route_topk: ", experts, " experts, top ", top_k);
  Impl& m = *impl_;
  const size_t n = static_cast<size_t>(tokens * top_k);
  // The kernel writes straight into mapped pinned memory: no copy node, read after the wait.
  auto* id_out = static_cast<int32_t*>(m.ring_alloc(n * sizeof(int32_t)));
  auto* w_out = static_cast<float*>(m.ring_alloc(n * sizeof(float)));
  m.begin_op(tokens);
  cuda::softmax_topk(logits.as<const float>(), to_int(tokens, "tokens"), static_cast<int>(experts),
                     static_cast<int>(top_k), renormalize, id_out, w_out, m.s());
  m.host_wait(/*end_of_step=*/false);
  std::copy(id_out, id_out + n, ids.begin());
  std::copy(w_out, w_out + n, weights.begin());
}

void CudaBackend::swiglu_mlp(const Tensor& x, const MlpWeights& w, Tensor& y) {
  expect_f32(x, "swiglu_mlp", "x");
  expect_f32(y, "swiglu_mlp", "y");
  if (is_ggml_weight(w.gate) || is_ggml_weight(w.up) || is_ggml_weight(w.down)) {
    swiglu_mlp_ggml(*impl_, x, w, y);
    return;
  }
  const cuda::WeightOperand g = weight_operand(w.gate, "swiglu_mlp", "gate");
  const cuda::WeightOperand u = weight_operand(w.up, "swiglu_mlp", "up");
  const cuda::WeightOperand d = weight_operand(w.down, "swiglu_mlp", "down");
  const int64_t tokens = x.dim(0), H = x.row_size(), I = g.n;
  MOE_CHECK(g.k == H && u.k == H && u.n == I && d.n == H && d.k == I && y.dim(0) == tokens && y.row_size() == H,
            "cuda backend: swiglu_mlp: x ", shape_str(x), " gate ", shape_str(w.gate), " up ", shape_str(w.up),
            " down ", shape_str(w.down), " y ", shape_str(y));
  const int T = to_int(tokens, "tokens");
  if (T == 0) return;
  Impl& m = *impl_;
  m.begin_op(T);
  if (T <= cuda::kGemvMaxTokens) {
    // Fused gate + up + silu (one kernel, x read once per row pair), then down.
    const bool fused = same_storage(g, u);
    float* h = m.work_floats(static_cast<int64_t>(T) * I * (fused ? 1 : 2));
    if (fused) {
      cuda::gemv_swiglu(x.as<const float>(), T, g, u, h, m.s());
    } else {
      float* up = h + static_cast<int64_t>(T) * I;
      cuda::gemv(x.as<const float>(), T, g, cuda::BiasOperand{}, h, m.s());
      cuda::gemv(x.as<const float>(), T, u, cuda::BiasOperand{}, up, m.s());
      cuda::silu_mul(h, up, static_cast<int64_t>(T) * I, h, m.s());
    }
    cuda::gemv(h, T, d, cuda::BiasOperand{}, y.as<float>(), m.s());
    return;
  }
  // A group of tokens: up product into h, the gate product folded in as h = silu(gate) * h, down.
  const int64_t hn = static_cast<int64_t>(T) * I;
  const int64_t sn =
      std::max({cuda::gemm_scratch_floats(T, g), cuda::gemm_scratch_floats(T, u), cuda::gemm_scratch_floats(T, d)});
  float* h = m.work_floats(hn + sn);
  float* scratch = h + hn;
  cuda::gemm(x.as<const float>(), T, u, cuda::BiasOperand{}, h, scratch, m.s());
  cuda::gemm_silu_mul(x.as<const float>(), T, g, h, scratch, m.s());
  cuda::gemm(h, T, d, cuda::BiasOperand{}, y.as<float>(), scratch, m.s());
}

void CudaBackend::gather_rows(const Tensor& x, std::span<const int32_t> rows, Tensor& out) {
  expect_f32(x, "gather_rows", "x");
  expect_f32(out, "gather_rows", "out");
  const int64_t width = x.row_size();
  MOE_CHECK(out.row_size() == width && static_cast<int64_t>(rows.size()) <= out.dim(0), "cuda backend: gather_rows: x ",
            shape_str(x), " out ", shape_str(out), " rows ", rows.size());
  if (rows.empty()) return;
  Impl& m = *impl_;
  const int32_t* r = m.ring_copy(rows.data(), rows.size());
  m.begin_op(static_cast<int64_t>(rows.size()));
  cuda::gather_rows(x.as<const float>(), r, static_cast<int64_t>(rows.size()), width, out.as<float>(), m.s());
}

void CudaBackend::scatter_add_rows(const Tensor& x, std::span<const int32_t> rows, std::span<const float> scale,
                                   Tensor& acc) {
  expect_f32(x, "scatter_add_rows", "x");
  expect_f32(acc, "scatter_add_rows", "acc");
  const int64_t width = acc.row_size();
  MOE_CHECK(x.row_size() == width && rows.size() == scale.size(), "cuda backend: scatter_add_rows: x ", shape_str(x),
            " acc ", shape_str(acc));
  if (rows.empty()) return;
  Impl& m = *impl_;
  const int32_t* r = m.ring_copy(rows.data(), rows.size());
  const float* s = m.ring_copy(scale.data(), scale.size());
  m.begin_op(static_cast<int64_t>(rows.size()));
  cuda::scatter_add_rows(x.as<const float>(), r, s, static_cast<int64_t>(rows.size()), width, acc.as<float>(), m.s());
}

void CudaBackend::add_sigmoid_gated(const Tensor& x, const Tensor& gate_logit, Tensor& acc) {
  expect_f32(x, "add_sigmoid_gated", "x");
  expect_f32(gate_logit, "add_sigmoid_gated", "gate_logit");
  expect_f32(acc, "add_sigmoid_gated", "acc");
  const int64_t tokens = x.dim(0);
  MOE_CHECK(gate_logit.numel() >= tokens && acc.numel() >= x.numel(), "cuda backend: add_sigmoid_gated: x ",
            shape_str(x), " gate ", shape_str(gate_logit), " acc ", shape_str(acc));
  impl_->begin_op(tokens);
  cuda::add_sigmoid_gated(x.as<const float>(), gate_logit.as<const float>(), tokens, x.row_size(), acc.as<float>(),
                          impl_->s());
}

}  // namespace moe
