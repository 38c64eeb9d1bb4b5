#include "runtime/model/weights.h"

#include <string>

#include "runtime/core/error.h"

namespace moe {
namespace {

// Looks tensors up in the checkpoint, checks them, and hands them to the backend.
class Binder {
 public:
  Binder(const ModelConfig& c, const WeightSource& ckpt, Backend& backend) : c_(c), ckpt_(ckpt), backend_(backend) {}

  bool has(const std::string& name) const { return ckpt_.contains(name); }

  // `why` names the config keys behind the expected shape, for the error message.
  Tensor bind(const std::string& name, std::vector<int64_t> expect, const char* why) {
    if (!ckpt_.contains(name))
      fail(ckpt_.dir().string(), ": tensor '", name, "' is missing (", c_.arch->hf_name, " expects it with shape ",
           shape_str(expect), ")");
    return bind_view(ckpt_.tensor(name), std::move(expect), why);
  }

  // While set, bind() checks tensors but aliases their mapped bytes instead of calling the
  // backend (ExpertBinding::kMapped).
  void set_mapped_only(bool on) { mapped_only_ = on; }

  Tensor bind_optional(const std::string& name, std::vector<int64_t> expect, const char* why) {
    return ckpt_.contains(name) ? bind_view(ckpt_.tensor(name), std::move(expect), why) : Tensor{};
  }

  uint64_t bytes() const { return bytes_; }

 private:
  Tensor bind_view(const TensorView& v, std::vector<int64_t> expect, const char* why) {
    if (v.shape != expect)
      fail(v.file, ": tensor '", v.name, "' has shape ", shape_str(v.shape), ", expected ", shape_str(expect),
           " from config.json (", why, ")");
    if (!v.quant && !dtype_is_compute(v.dtype))
      fail(v.file, ": tensor '", v.name, "' has dtype ", dtype_name(v.dtype),
           "; only F32, F16 and BF16 weights (or our quantized formats) are supported");
    bytes_ += v.nbytes;
    if (mapped_only_) return mapped(v);
    return backend_.load_weight(v);
  }

  static Tensor mapped(const TensorView& v) {
    Tensor t;
    t.data = const_cast<void*>(v.data);  // read-only by contract
    t.dtype = v.dtype;
    t.quant = v.quant;
    t.device = Device::kCpu;
    t.rank = static_cast<int>(v.shape.size());
    for (size_t i = 0; i < v.shape.size(); ++i) t.shape[i] = v.shape[i];
    return t;
  }

  const ModelConfig& c_;
  const WeightSource& ckpt_;
  Backend& backend_;
  uint64_t bytes_ = 0;
  bool mapped_only_ = false;
};

AttentionWeights bind_attention(Binder& b, const ModelConfig& c, const std::string& p) {
  const int64_t h = c.hidden_size, qw = c.q_width(), kvw = c.kv_width();
  AttentionWeights a;
  const std::string s = p + "self_attn.";
  a.q = b.bind(s + "q_proj.weight", {qw, h}, "num_attention_heads x head_dim, hidden_size");
  a.k = b.bind(s + "k_proj.weight", {kvw, h}, "num_key_value_heads x head_dim, hidden_size");
  a.v = b.bind(s + "v_proj.weight", {kvw, h}, "num_key_value_heads x head_dim, hidden_size");
  a.o = b.bind(s + "o_proj.weight", {h, qw}, "hidden_size, num_attention_heads x head_dim");
  if (c.qkv_bias) {
    a.q_bias = b.bind(s + "q_proj.bias", {qw}, "qkv bias enabled by config");
    a.k_bias = b.bind(s + "k_proj.bias", {kvw}, "qkv bias enabled by config");
    a.v_bias = b.bind(s + "v_proj.bias", {kvw}, "qkv bias enabled by config");
  }
  if (c.o_bias) a.o_bias = b.bind(s + "o_proj.bias", {h}, "attention_bias");
  switch (c.arch->qk_norm) {
    case QkNorm::kNone: break;
    case QkNorm::kPerHead:
      a.q_norm = b.bind(s + "q_norm.weight", {c.head_dim}, "head_dim");
      a.k_norm = b.bind(s + "k_norm.weight", {c.head_dim}, "head_dim");
      break;
    case QkNorm::kFullWidth:
      a.q_norm = b.bind(s + "q_norm.weight", {qw}, "num_attention_heads x head_dim");
      a.k_norm = b.bind(s + "k_norm.weight", {kvw}, "num_key_value_heads x head_dim");
      break;
  }
  return a;
}

MlpWeights bind_mlp(Binder& b, const std::string& p, int64_t h, int64_t width, const char* why) {
  return MlpWeights{.gate = b.bind(p + "gate_proj.weight", {width, h}, why),
                    .up = b.bind(p + "up_proj.weight", {width, h}, why),
                    .down = b.bind(p + "down_proj.weight", {h, width}, why)};
}

// The routed experts of one layer, in whichever form the checkpoint holds them.
std::vector<MlpWeights> bind_experts(Binder& b, const ModelConfig& c, const std::string& block, ExpertForm& form) {
  const int64_t h = c.hidden_size, width = c.expert_intermediate, n = c.num_experts;
  std::vector<MlpWeights> experts;
  experts.reserve(static_cast<size_t>(n));
  const std::string fused = block + "experts.gate_up_proj";
  if (b.has(fused)) {
    form = ExpertForm::kFused;
    const char* why = "num_experts, 2 x expert intermediate size, hidden_size";
    Tensor gate_up = b.bind(fused, {n, 2 * width, h}, why);
    Tensor down = b.bind(block + "experts.down_proj", {n, h, width}, "num_experts, hidden_size, expert width");
    for (int64_t e = 0; e < n; ++e) {
      Tensor gu = gate_up.row(e);  // (2I, H): gate rows, then up rows
      experts.push_back({.gate = gu.slice_rows(0, width), .up = gu.slice_rows(width, width), .down = down.row(e)});
    }
    return experts;
  }
  const ArchSpec& a = *c.arch;
  const char* why = "expert intermediate size, hidden_size";
  for (int64_t e = 0; e < n; ++e) {
    const std::string p = str_cat(block, "experts.", e, ".");
    experts.push_back({.gate = b.bind(str_cat(p, a.expert_gate, ".weight"), {width, h}, why),
                       .up = b.bind(str_cat(p, a.expert_up, ".weight"), {width, h}, why),
                       .down = b.bind(str_cat(p, a.expert_down, ".weight"), {h, width}, why)});
  }
  return experts;
}

MoeWeights bind_moe(Binder& b, const ModelConfig& c, const std::string& layer, ExpertForm& form, uint64_t& expert_bytes,
                    ExpertBinding binding) {
  // The Hub names of the arch (e.g. Mixtral's block_sparse_moe), or transformers 5's `mlp`.
  std::string block = str_cat(layer, c.arch->moe_block, ".");
  if (!b.has(block + "gate.weight") && b.has(layer + "mlp.gate.weight")) block = layer + "mlp.";
  MoeWeights m;
  m.router = b.bind(block + "gate.weight", {c.num_experts, c.hidden_size}, "num_experts, hidden_size");
  const uint64_t before = b.bytes();
  b.set_mapped_only(binding == ExpertBinding::kMapped);
  m.experts = bind_experts(b, c, block, form);
  b.set_mapped_only(false);
  expert_bytes += b.bytes() - before;
  if (c.arch->shared_expert) {
    m.shared = bind_mlp(b, block + "shared_expert.", c.hidden_size, c.shared_intermediate,
                        "shared_expert_intermediate_size, hidden_size");
    m.shared_gate = b.bind(block + "shared_expert_gate.weight", {1, c.hidden_size}, "hidden_size");
  }
  return m;
}

}  // namespace

ModelWeights bind_weights(const ModelConfig& c, const WeightSource& ckpt, const ParallelLayout& layout,
                          Backend& backend, ExpertBinding experts) {
  MOE_CHECK(layout.tp_size() == 1, "bind_weights: tensor-parallel sharding (tp size ", layout.tp_size(),
            ") is not implemented yet; run with tp size 1");
  MOE_CHECK(layout.num_layers() == c.num_layers, c.source.string(), ": the model has ", c.num_layers,
            " layers (num_hidden_layers) but the parallel layout was made for ", layout.num_layers(), " (",
            layout.describe(), ")");
  Binder b(c, ckpt, backend);
  ModelWeights w;
  const int64_t h = c.hidden_size, v = c.vocab_size;
  const bool needs_embed = layout.is_first_stage() || (layout.is_last_stage() && c.tie_word_embeddings);
  if (needs_embed) w.embed = b.bind("model.embed_tokens.weight", {v, h}, "vocab_size, hidden_size");
  if (layout.is_last_stage()) {
    w.final_norm = b.bind("model.norm.weight", {h}, "hidden_size");
    if (c.tie_word_embeddings) {
      w.lm_head = w.embed;
    } else {
      w.lm_head = b.bind("lm_head.weight", {v, h}, "vocab_size, hidden_size; tie_word_embeddings is false");
    }
  }
  for (int64_t i = layout.layers().begin; i < layout.layers().end; ++i) {
    const std::string p = str_cat("model.layers.", i, ".");
    LayerWeights L;
    L.index = i;
    L.attn_norm = b.bind(p + "input_layernorm.weight", {h}, "hidden_size");
    L.ffn_norm = b.bind(p + "post_attention_layernorm.weight", {h}, "hidden_size");
    L.attn = bind_attention(b, c, p);
    L.is_moe = c.layer_is_moe[static_cast<size_t>(i)];
    if (L.is_moe) {
      L.moe = bind_moe(b, c, p, w.expert_form, w.expert_bytes, experts);
    } else {
      L.dense = bind_mlp(b, p + "mlp.", h, c.dense_intermediate, "intermediate_size (dense layer), hidden_size");
    }
    w.layers.push_back(std::move(L));
  }
  w.bytes = b.bytes();
  return w;
}

uint64_t ModelWeights::decode_bytes_per_token(int64_t top_k) const {
  auto mlp = [](const MlpWeights& m) { return m.gate.nbytes() + m.up.nbytes() + m.down.nbytes(); };
  uint64_t total = final_norm.nbytes() + lm_head.nbytes();
  if (!embed.empty() && embed.dim(0) > 0) total += embed.nbytes() / static_cast<uint64_t>(embed.dim(0));
  for (const LayerWeights& L : layers) {
    const AttentionWeights& a = L.attn;
    for (const Tensor* t : {&a.q, &a.k, &a.v, &a.o, &a.q_bias, &a.k_bias, &a.v_bias, &a.o_bias, &a.q_norm, &a.k_norm,
                            &L.attn_norm, &L.ffn_norm})
      if (!t->empty()) total += t->nbytes();
    if (!L.is_moe) {
      total += mlp(L.dense);
      continue;
    }
    total += L.moe.router.nbytes();
    if (!L.moe.experts.empty()) total += static_cast<uint64_t>(top_k) * mlp(L.moe.experts.front());
    if (!L.moe.shared_gate.empty()) total += mlp(L.moe.shared) + L.moe.shared_gate.nbytes();
  }
  return total;
}

}  // namespace moe
