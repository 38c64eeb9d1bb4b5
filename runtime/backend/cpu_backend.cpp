#include "runtime/backend/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/common/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/qlinear.h"
#include "kernels/cpu/qtile.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/routing.h"
#include "kernels/quant/quantize.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

void expect_f32(const Tensor& t, const char* op, const char* what) {
  MOE_CHECK(t.dtype == DType::kF32 && t.device == Device::kCpu, "cpu backend: ", op, ": ", what,
            " must be an f32 host tensor, found ", dtype_name(t.dtype), " ", shape_str(t));
}

cpu::QWeight qweight(const Tensor& w) {
  return cpu::QWeight{w.as<const uint8_t>(), *w.quant, w.qlayout};
}

// Whether the CPU kernels want weight t (rank 2, quantized) in kTile16 on this machine.
bool wants_tiles(const Tensor& t) {
  return t.quant && t.qlayout == QuantLayout::kRows && t.rank == 2 && t.dim(0) >= cpu::kQTileRows &&
         cpu::qtile_preferred(*t.quant);
}

void expect_weight(const Tensor& t, const char* op, const char* what) {
  MOE_CHECK((t.quant || dtype_is_compute(t.dtype)) && t.device == Device::kCpu, "cpu backend: ", op, ": ", what,
            " has dtype ", dtype_name(t.dtype), "; the CPU backend computes over F32, F16 and BF16");
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {
  cpu::set_num_threads(threads_);  // the kernels' pool (kernels/common/thread_pool.h) and OpenMP's
}

std::string CpuBackend::name() const {
  return str_cat("cpu (", threads_, " threads)");
}

Tensor CpuBackend::alloc(DType dtype, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, dtype, Device::kCpu, shape);
  const uint64_t bytes = (t.nbytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  MOE_CHECK(p != nullptr, "cpu backend: cannot allocate ", bytes, " bytes for ", shape_str(t));
  arena_.emplace_back(p);
  t.data = p;
  return t;
}

Tensor CpuBackend::load_weight(const TensorView& w) {
  Tensor t;
  t.data = const_cast<void*>(w.data);  // read-only by contract: ops never write weights
  t.dtype = w.dtype;
  t.quant = w.quant;
  t.device = Device::kCpu;
  MOE_CHECK(w.shape.size() <= t.shape.size(), w.file, ": tensor '", w.name, "' has rank ", w.shape.size());
  t.rank = static_cast<int>(w.shape.size());
  for (size_t i = 0; i < w.shape.size(); ++i) t.shape[i] = w.shape[i];
  // safetensors does not require padding, so a file from another writer may place a tensor at
  // an address that is not a multiple of its element size; the kernels need that alignment.
  // Quantized blocks start with fp16 scales: 2-byte alignment.
  const auto element_bytes = static_cast<uintptr_t>(w.quant ? 2 : std::max(1, dtype_bits(w.dtype) / 8));
  if (wants_tiles(t)) {  // rearranged for the kernels: a copy in the arena, the file untouched
    Tensor tiled = alloc(DType::kU8, {static_cast<int64_t>(w.nbytes)});
    cpu::qtile_pack(static_cast<const uint8_t*>(w.data), *t.quant, t.dim(0), t.dim(1), tiled.as<uint8_t>());
    t.data = tiled.data;
    t.qlayout = QuantLayout::kTile16;
    ++tiled_weights_;
    return t;
  }
  if (reinterpret_cast<uintptr_t>(w.data) % element_bytes != 0) {
    Tensor copy = alloc(DType::kU8, {static_cast<int64_t>(w.nbytes)});
    std::memcpy(copy.data, w.data, w.nbytes);
    t.data = copy.data;
    ++realigned_weights_;
  }
  return t;
}

Tensor CpuBackend::adopt_weight_in_place(Tensor w) {
  if (wants_tiles(w)) {
    cpu::qtile_pack_in_place(w.as<uint8_t>(), *w.quant, w.dim(0), w.dim(1));
    w.qlayout = QuantLayout::kTile16;
  }
  return w;
}

void CpuBackend::copy_from_host(const void* src, uint64_t bytes, Tensor& dst) {
  MOE_CHECK(bytes <= dst.nbytes(), "cpu backend: copy of ", bytes, " bytes into ", dst.nbytes());
  std::memcpy(dst.data, src, bytes);
}

void CpuBackend::copy_to_host(const Tensor& src, void* dst, uint64_t bytes) {
  MOE_CHECK(bytes <= src.nbytes(), "cpu backend: copy of ", bytes, " bytes from ", src.nbytes());
  std::memcpy(dst, src.data, bytes);
}

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  expect_weight(table, "embedding", "table");
  expect_f32(out, "embedding", "out");
  const int64_t width = table.dim(1);
  if (table.quant && table.qlayout == QuantLayout::kTile16) {  // a tied embedding / LM head
    for (int64_t t = 0; t < ids.numel(); ++t)
      cpu::qtile_dequantize_row(table.as<const uint8_t>(), *table.quant, table.dim(0), width,
                                ids.as<const int32_t>()[t], out.as<float>() + t * width);
    return;
  }
  if (table.quant) {  // dequantize the picked rows
    for (int64_t t = 0; t < ids.numel(); ++t)
      dequantize_rows(
          table.as<const uint8_t>() + static_cast<uint64_t>(ids.as<const int32_t>()[t]) * table.last_dim_bytes(), 1,
          width, *table.quant, out.as<float>() + t * width);
    return;
  }
  cpu::embedding(ids.as<const int32_t>(), ids.numel(), table.ref(), width, out.as<float>());
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
  expect_f32(x, "rms_norm", "x");
  expect_weight(w, "rms_norm", "weight");
  const int64_t d = w.numel();
  MOE_CHECK(x.numel() % d == 0 && y.numel() == x.numel(), "cpu backend: rms_norm: x ", shape_str(x), " y ",
            shape_str(y), " weight ", shape_str(w));
  cpu::rms_norm(x.as<const float>(), x.numel() / d, d, w.ref(), eps, y.as<float>());
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  expect_f32(x, "linear", "x");
  expect_weight(w, "linear", "weight");
  const int64_t tokens = x.dim(0), k = x.row_size(), n = w.dim(0);
  MOE_CHECK(w.rank == 2 && w.dim(1) == k && y.dim(0) == tokens && y.row_size() == n, "cpu backend: linear: x ",
            shape_str(x), " w ", shape_str(w), " y ", shape_str(y));
  WeightRef b{};
  if (!bias.empty()) {
    expect_weight(bias, "linear", "bias");
    MOE_CHECK(bias.numel() == n, "cpu backend: linear: bias ", shape_str(bias), " for ", n, " outputs");
    b = bias.ref();
  }
  if (w.quant) {
    cpu::qlinear(x.as<const float>(), tokens, k, qweight(w), n, b, y.as<float>());
    return;
  }
  cpu::linear(x.as<const float>(), tokens, k, w.ref(), n, b, y.as<float>());
}

void CpuBackend::rope(Tensor& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions, float theta) {
  const int64_t tokens = x.dim(0);
  MOE_CHECK(static_cast<int64_t>(positions.size()) == tokens, "cpu backend: rope: ", positions.size(),
            " positions for ", shape_str(x));
  positions_.resize(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) positions_[static_cast<size_t>(t)] = positions[static_cast<size_t>(t)];
  cpu::rope(x.as<float>(), tokens, n_heads, head_dim, positions_.data(), theta);
}

void CpuBackend::clamp(Tensor& x, float limit) {
  cpu::clamp(x.as<float>(), x.numel(), -limit, limit);
}

void CpuBackend::kv_append(const Tensor& k, const Tensor& v, const KvBatch& batch, Tensor& k_cache, Tensor& v_cache) {
  const int64_t tokens = k.dim(0), n_kv = k_cache.dim(1), bs = k_cache.dim(2), head_dim = k_cache.dim(3);
  check_kv_batch(k_cache, batch, tokens, "cpu backend: kv_append");
  const size_t row_bytes = static_cast<size_t>(head_dim) * sizeof(float);
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = batch.slot(t), block = slot / bs;
    for (int64_t h = 0; h < n_kv; ++h) {
      const int64_t src = (t * n_kv + h) * head_dim;
      const int64_t dst = ((block * n_kv + h) * bs + slot % bs) * head_dim;
      std::memcpy(k_cache.as<float>() + dst, k.as<const float>() + src, row_bytes);
      std::memcpy(v_cache.as<float>() + dst, v.as<const float>() + src, row_bytes);
    }
  }
}

void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const KvBatch& batch,
                           int64_t n_heads, int64_t window, float scale, Tensor& out) {
  const int64_t tokens = q.dim(0);
  check_kv_batch(k_cache, batch, tokens, "cpu backend: attention");
  row_tables_.resize(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t)
    row_tables_[static_cast<size_t>(t)] = batch.block_table.data() + batch.seq_of(t).table0;
  const cpu::PagedKv kv{k_cache.as<const float>(), v_cache.as<const float>(), k_cache.dim(1), k_cache.dim(3),
                        k_cache.dim(2)};
  cpu::attention(q.as<const float>(), tokens, n_heads, kv, batch.positions.data(), row_tables_.data(), window, scale,
                 out.as<float>());
}

void CpuBackend::fill_zero(Tensor& x) {
  std::memset(x.data, 0, x.nbytes());
}

void CpuBackend::add(Tensor& x, const Tensor& y) {
  MOE_CHECK(x.numel() == y.numel(), "cpu backend: add: ", shape_str(x), " + ", shape_str(y));
  cpu::add_inplace(x.as<float>(), y.as<const float>(), x.numel());
}

void CpuBackend::route_topk(const Tensor& logits, int64_t top_k, bool renormalize, std::span<int32_t> ids,
                            std::span<float> weights) {
  const int64_t tokens = logits.dim(0), experts = logits.row_size();
  MOE_CHECK(
      static_cast<int64_t>(ids.size()) >= tokens * top_k && static_cast<int64_t>(weights.size()) >= tokens * top_k,
      "cpu backend: route_topk: output spans too small");
  cpu::softmax_topk(logits.as<const float>(), tokens, experts, top_k, renormalize, ids.data(), weights.data());
}

void CpuBackend::swiglu_mlp(const Tensor& x, const MlpWeights& w, Tensor& y) {
  const int64_t tokens = x.dim(0), width = w.gate.dim(0);
  const size_t need = static_cast<size_t>(tokens * width);
  if (gate_buf_.size() < need) {
    gate_buf_.resize(need);
    up_buf_.resize(need);
  }
  if (w.gate.quant && w.up.quant && w.down.quant) {  // the fused quantized expert kernel
    scratch_.resize(std::max(scratch_.size(), 2 * need));
    cpu::qswiglu(x.as<const float>(), tokens, x.row_size(), qweight(w.gate), qweight(w.up), qweight(w.down), width,
                 scratch_.data(), y.as<float>());
    return;
  }
  Tensor gate(gate_buf_.data(), DType::kF32, Device::kCpu, {tokens, width});
  Tensor up(up_buf_.data(), DType::kF32, Device::kCpu, {tokens, width});
  linear(x, w.gate, Tensor{}, gate);
  linear(x, w.up, Tensor{}, up);
  cpu::silu_mul(gate.as<const float>(), up.as<const float>(), tokens * width, gate.as<float>());
  linear(gate, w.down, Tensor{}, y);
}

void CpuBackend::gather_rows(const Tensor& x, std::span<const int32_t> rows, Tensor& out) {
  const int64_t width = x.row_size();
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(out.as<float>() + static_cast<int64_t>(i) * width, x.as<const float>() + rows[i] * width,
                static_cast<size_t>(width) * sizeof(float));
}

void CpuBackend::scatter_add_rows(const Tensor& x, std::span<const int32_t> rows, std::span<const float> scale,
                                  Tensor& acc) {
  const int64_t width = acc.row_size();
  for (size_t i = 0; i < rows.size(); ++i)
    cpu::add_scaled(acc.as<float>() + rows[i] * width, x.as<const float>() + static_cast<int64_t>(i) * width, scale[i],
                    width);
}

void CpuBackend::add_sigmoid_gated(const Tensor& x, const Tensor& gate_logit, Tensor& acc) {
  const int64_t tokens = x.dim(0), width = x.row_size();
  for (int64_t t = 0; t < tokens; ++t)
    cpu::add_scaled(acc.as<float>() + t * width, x.as<const float>() + t * width,
                    cpu::sigmoid(gate_logit.as<const float>()[t]), width);
}

}  // namespace moe
