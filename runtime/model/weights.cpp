#include "runtime/model/weights.h"

#include <string>

#include "runtime/core/error.h"
#include "runtime/model/weight_shard.h"

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
    check(v, expect, why);
    return load(v);
  }

 public:
  // The stored tensor `name`, checked against its full (unsharded) shape.
  TensorView lookup(const std::string& name, const std::vector<int64_t>& expect, const char* why) const {
    if (!ckpt_.contains(name))
      fail(ckpt_.dir().string(), ": tensor '", name, "' is missing (", c_.arch->hf_name, " expects it with shape ",
           shape_str(expect), ")");
    TensorView v = ckpt_.tensor(name);
    check(v, expect, why);
    return v;
  }
  // Rows [begin, begin + n) of `name` (a tensor-parallel shard of output features): a view of
  // the file's bytes.
  Tensor bind_rows(const std::string& name, std::vector<int64_t> expect, int64_t begin, int64_t n, const char* why) {
    return load(view_rows(lookup(name, expect, why), begin, n));
  }
  // Columns [begin, begin + n) of `name` (a shard of input features), copied.
  Tensor bind_cols(const std::string& name, std::vector<int64_t> expect, int64_t begin, int64_t n, const char* why) {
    return load(copy_cols(lookup(name, expect, why), begin, n, *shards_));
  }
  // A view (already checked) handed to the backend, or aliased when mapped-only.
  Tensor load(const TensorView& v) {
    bytes_ += v.nbytes;
    if (mapped_only_) return mapped(v);
    return backend_.load_weight(v);
  }
  ShardStorage& shards() { return *shards_; }
  std::shared_ptr<ShardStorage> shard_storage() const { return shards_; }

 private:
  void check(const TensorView& v, const std::vector<int64_t>& expect, const char* why) const {
    if (v.shape != expect)
      fail(v.file, ": tensor '", v.name, "' has shape ", shape_str(v.shape), ", expected ", shape_str(expect),
           " from config.json (", why, ")");
    if (!v.quant && !dtype_is_compute(v.dtype))
      fail(v.file, ": tensor '", v.name, "' has dtype ", dtype_name(v.dtype),
           "; only F32, F16 and BF16 weights (or our quantized formats) are supported");
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
  std::shared_ptr<ShardStorage> shards_ = std::make_shared<ShardStorage>();
};

// This rank's slice of a dimension split tp ways: [begin, begin + n).
struct Slice {
  int64_t begin = 0, n = 0;
};
Slice tp_slice(const ParallelLayout& L, int64_t total, const char* what) {
  const int64_t n = L.tp_shard(total, what);
  return {L.tp_rank() * n, n};
}

AttentionWeights bind_attention(Binder& b, const ModelConfig& c, const ParallelLayout& L, const std::string& p) {
  const int64_t h = c.hidden_size, qw = c.q_width(), kvw = c.kv_width(), hd = c.head_dim;
  AttentionWeights a;
  const std::string s = p + "self_attn.";
  // Tensor parallel: this rank's query heads and the KV heads they use (rows of q/k/v), and the
  // matching input columns of o; o's bias is added once, by tensor rank 0.
  const Slice q = tp_slice(L, c.num_heads, "num_attention_heads");
  const int64_t kv0 = L.kv_head_begin(c.num_kv_heads), kvn = L.kv_heads(c.num_kv_heads);
  const char* why_q = "num_attention_heads x head_dim, hidden_size";
  const char* why_kv = "num_key_value_heads x head_dim, hidden_size";
  a.q = b.bind_rows(s + "q_proj.weight", {qw, h}, q.begin * hd, q.n * hd, why_q);
  a.k = b.bind_rows(s + "k_proj.weight", {kvw, h}, kv0 * hd, kvn * hd, why_kv);
  a.v = b.bind_rows(s + "v_proj.weight", {kvw, h}, kv0 * hd, kvn * hd, why_kv);
  if (L.tp_size() == 1)
    a.o = b.bind(s + "o_proj.weight", {h, qw}, "hidden_size, num_attention_heads x head_dim");
  else
    a.o = b.bind_cols(s + "o_proj.weight", {h, qw}, q.begin * hd, q.n * hd,
                      "hidden_size, num_attention_heads x head_dim");
  if (c.qkv_bias) {
    a.q_bias = b.bind_rows(s + "q_proj.bias", {qw}, q.begin * hd, q.n * hd, "qkv bias enabled by config");
    a.k_bias = b.bind_rows(s + "k_proj.bias", {kvw}, kv0 * hd, kvn * hd, "qkv bias enabled by config");
    a.v_bias = b.bind_rows(s + "v_proj.bias", {kvw}, kv0 * hd, kvn * hd, "qkv bias enabled by config");
  }
  if (c.o_bias && L.tp_rank() == 0) a.o_bias = b.bind(s + "o_proj.bias", {h}, "attention_bias");
  // q/k norms are replicated: per head they are the same on every rank; over the full width the
  // forward pass gathers the heads first (Transformer::sharded_rms_norm).
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

MlpWeights bind_mlp(Binder& b, const ParallelLayout& L, const std::string& p, int64_t h, int64_t width,
                    const char* why) {
  if (L.tp_size() == 1)
    return MlpWeights{.gate = b.bind(p + "gate_proj.weight", {width, h}, why),
                      .up = b.bind(p + "up_proj.weight", {width, h}, why),
                      .down = b.bind(p + "down_proj.weight", {h, width}, why)};
  // Tensor parallel: gate/up by rows (column-parallel), down by columns (row-parallel).
  const Slice s = tp_slice(L, width, why);
  return MlpWeights{.gate = b.bind_rows(p + "gate_proj.weight", {width, h}, s.begin, s.n, why),
                    .up = b.bind_rows(p + "up_proj.weight", {width, h}, s.begin, s.n, why),
                    .down = b.bind_cols(p + "down_proj.weight", {h, width}, s.begin, s.n, why)};
}

// One routed expert's shard from checked views of its three matrices (gate/up (I, H), down (H, I)).
MlpWeights bind_expert_views(Binder& b, const ParallelLayout& L, const TensorView& gate, const TensorView& up,
                             const TensorView& down, int64_t width) {
  if (L.tp_size() == 1) return {.gate = b.load(gate), .up = b.load(up), .down = b.load(down)};
  const Slice s = tp_slice(L, width, "expert intermediate size");
  return {.gate = b.load(view_rows(gate, s.begin, s.n)),
          .up = b.load(view_rows(up, s.begin, s.n)),
          .down = b.load(copy_cols(down, s.begin, s.n, b.shards()))};
}

// The routed experts of one layer, in whichever form the checkpoint holds them. Under expert
// parallelism the experts this rank does not own stay empty (nothing of theirs is read); under
// tensor parallelism each owned expert is this rank's shard of its intermediate width.
std::vector<MlpWeights> bind_experts(Binder& b, const ModelConfig& c, const ParallelLayout& L, int64_t layer,
                                     const std::string& block, ExpertForm& form) {
  const int64_t h = c.hidden_size, width = c.expert_intermediate, n = c.num_experts;
  std::vector<MlpWeights> experts(static_cast<size_t>(n));
  const bool whole = L.tp_size() == 1 && L.ep_size() == 1;
  const std::string fused = block + "experts.gate_up_proj";
  if (b.has(fused)) {
    form = ExpertForm::kFused;
    const char* why = "num_experts, 2 x expert intermediate size, hidden_size";
    if (whole) {
      Tensor gate_up = b.bind(fused, {n, 2 * width, h}, why);
      Tensor down = b.bind(block + "experts.down_proj", {n, h, width}, "num_experts, hidden_size, expert width");
      for (int64_t e = 0; e < n; ++e) {
        Tensor gu = gate_up.row(e);  // (2I, H): gate rows, then up rows
        experts[static_cast<size_t>(e)] = {
            .gate = gu.slice_rows(0, width), .up = gu.slice_rows(width, width), .down = down.row(e)};
      }
      return experts;
    }
    const TensorView gate_up = b.lookup(fused, {n, 2 * width, h}, why);
    const TensorView down =
        b.lookup(block + "experts.down_proj", {n, h, width}, "num_experts, hidden_size, expert width");
    for (int64_t e = 0; e < n; ++e) {
      if (!L.owns_expert(layer, e)) continue;
      const TensorView gu = view_index(gate_up, e);
      experts[static_cast<size_t>(e)] =
          bind_expert_views(b, L, view_rows(gu, 0, width), view_rows(gu, width, width), view_index(down, e), width);
    }
    return experts;
  }
  const ArchSpec& a = *c.arch;
  const char* why = "expert intermediate size, hidden_size";
  for (int64_t e = 0; e < n; ++e) {
    if (!L.owns_expert(layer, e)) continue;
    const std::string p = str_cat(block, "experts.", e, ".");
    // Looked up in order, so the first bad tensor is the one named.
    const TensorView gate = b.lookup(str_cat(p, a.expert_gate, ".weight"), {width, h}, why);
    const TensorView up = b.lookup(str_cat(p, a.expert_up, ".weight"), {width, h}, why);
    const TensorView down = b.lookup(str_cat(p, a.expert_down, ".weight"), {h, width}, why);
    experts[static_cast<size_t>(e)] = bind_expert_views(b, L, gate, up, down, width);
  }
  return experts;
}

MoeWeights bind_moe(Binder& b, const ModelConfig& c, const ParallelLayout& L, int64_t index, const std::string& layer,
                    ExpertForm& form, uint64_t& expert_bytes, ExpertBinding binding) {
  // The Hub names of the arch (e.g. Mixtral's block_sparse_moe), or transformers 5's `mlp`.
  std::string block = str_cat(layer, c.arch->moe_block, ".");
  if (!b.has(block + "gate.weight") && b.has(layer + "mlp.gate.weight")) block = layer + "mlp.";
  MoeWeights m;
  m.router = b.bind(block + "gate.weight", {c.num_experts, c.hidden_size}, "num_experts, hidden_size");
  const uint64_t before = b.bytes();
  b.set_mapped_only(binding == ExpertBinding::kMapped);
  m.experts = bind_experts(b, c, L, index, block, form);
  b.set_mapped_only(false);
  expert_bytes += b.bytes() - before;
  // The shared expert runs on expert-parallel rank 0 only (split over its tensor ranks), so the
  // stage's all-reduce adds it once.
  if (c.arch->shared_expert && L.ep_rank() == 0) {
    m.shared = bind_mlp(b, L, block + "shared_expert.", c.hidden_size, c.shared_intermediate,
                        "shared_expert_intermediate_size, hidden_size");
    m.shared_gate = b.bind(block + "shared_expert_gate.weight", {1, c.hidden_size}, "hidden_size");
  }
  return m;
}

}  // namespace

ModelWeights bind_weights(const ModelConfig& c, const WeightSource& ckpt, const ParallelLayout& layout,
                          Backend& backend, ExpertBinding experts) {
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
    // Tensor parallel: the LM head split by vocabulary when the sizes allow (the forward pass
    // gathers the logits), else replicated. A tied head stays the (replicated) embedding.
    const char* why = "vocab_size, hidden_size; tie_word_embeddings is false";
    if (c.tie_word_embeddings) {
      w.lm_head = w.embed;
    } else if (layout.tp_size() > 1 && v % layout.tp_size() == 0) {
      const int64_t n = v / layout.tp_size();
      w.lm_head = b.bind_rows("lm_head.weight", {v, h}, layout.tp_rank() * n, n, why);
    } else {
      w.lm_head = b.bind("lm_head.weight", {v, h}, why);
    }
  }
  for (int64_t i = layout.layers().begin; i < layout.layers().end; ++i) {
    const std::string p = str_cat("model.layers.", i, ".");
    LayerWeights L;
    L.index = i;
    L.attn_norm = b.bind(p + "input_layernorm.weight", {h}, "hidden_size");
    L.ffn_norm = b.bind(p + "post_attention_layernorm.weight", {h}, "hidden_size");
    L.attn = bind_attention(b, c, layout, p);
    L.is_moe = c.layer_is_moe[static_cast<size_t>(i)];
    if (L.is_moe) {
      L.moe = bind_moe(b, c, layout, i, p, w.expert_form, w.expert_bytes, experts);
    } else {
      L.dense =
          bind_mlp(b, layout, p + "mlp.", h, c.dense_intermediate, "intermediate_size (dense layer), hidden_size");
    }
    w.layers.push_back(std::move(L));
  }
  w.bytes = b.bytes();
  w.shards = b.shard_storage();
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
    for (const MlpWeights& e : L.moe.experts)  // the first bound one (expert parallelism leaves some empty)
      if (!e.gate.empty()) {
        total += static_cast<uint64_t>(top_k) * mlp(e);
        break;
      }
    if (!L.moe.shared_gate.empty()) total += mlp(L.moe.shared) + L.moe.shared_gate.nbytes();
  }
  return total;
}

}  // namespace moe
