#include "runtime/model/gguf_source.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/model/architecture.h"

namespace moe {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// How one GGUF architecture reads as a Hugging Face one.
struct GgufArch {
  std::string_view gguf;     // general.architecture
  std::string_view hf;       // architectures[0]
  std::string_view type;     // model_type
  bool permuted_qk = false;  // converters permute q/k rows for ggml's interleaved (NORM) RoPE
  bool norm_topk = false;    // renormalise the top-k weights (llama.cpp's norm_w for the arch)
};

// llama.cpp: llama (Mixtral) uses the NORM rope and its converter permutes q/k; qwen2moe,
// qwen3moe and olmoe use NEOX rope (Hugging Face's rotate-half) and keep the rows as they are.
// Top-k renormalisation as llama.cpp builds each arch's MoE: qwen3moe yes, qwen2moe and olmoe no
// (Mixtral always renormalises; its row says so through the arch table, not this flag).
constexpr GgufArch kArchs[] = {
    {"llama", "MixtralForCausalLM", "mixtral", true, true},
    {"qwen2moe", "Qwen2MoeForCausalLM", "qwen2_moe", false, false},
    {"qwen3moe", "Qwen3MoeForCausalLM", "qwen3_moe", false, true},
    {"olmoe", "OlmoeForCausalLM", "olmoe", false, false},
};

const GgufArch& find_arch(const GgufFile& f) {
  const std::string& name = f.get_string("general.architecture");
  for (const GgufArch& a : kArchs)
    if (a.gguf == name) return a;
  std::string known;
  for (const GgufArch& a : kArchs) known += str_cat(known.empty() ? "" : ", ", a.gguf);
  fail(f.path().string(), ": general.architecture '", name, "' is not supported; supported: ", known,
       " (llama only with experts: Mixtral)");
}

const GgufArch& arch_of_hf(std::string_view hf) {
  for (const GgufArch& a : kArchs)
    if (a.hf == hf) return a;
  fail("gguf: no GGUF architecture reads as ", hf);
}

// The element count of a tensor's dims, innermost first, as the HF shape (outermost first).
std::vector<int64_t> hf_shape(const GgufTensorInfo& t) {
  std::vector<int64_t> s;
  for (auto it = t.dims.rbegin(); it != t.dims.rend(); ++it) s.push_back(static_cast<int64_t>(*it));
  return s;
}

// The kernels' view of a ggml type id: a dtype, or a block format. nullopt for a type the
// kernels do not compute with.
struct StoredType {
  DType dtype = DType::kF32;
  std::optional<QuantFormat> quant;
};
std::optional<StoredType> stored_type(uint32_t ggml_type) {
  auto q = [](QuantType t) { return StoredType{DType::kU8, QuantFormat{t, ggml_block(t).elems}}; };
  switch (ggml_type) {
    case 0: return StoredType{DType::kF32, std::nullopt};
    case 1: return StoredType{DType::kF16, std::nullopt};
    case 30: return StoredType{DType::kBF16, std::nullopt};
    case 2: return q(QuantType::kGgmlQ4_0);
    case 3: return q(QuantType::kGgmlQ4_1);
    case 6: return q(QuantType::kGgmlQ5_0);
    case 7: return q(QuantType::kGgmlQ5_1);
    case 8: return q(QuantType::kGgmlQ8_0);
    case 10: return q(QuantType::kGgmlQ2_K);
    case 11: return q(QuantType::kGgmlQ3_K);
    case 12: return q(QuantType::kGgmlQ4_K);
    case 13: return q(QuantType::kGgmlQ5_K);
    case 14: return q(QuantType::kGgmlQ6_K);
    case 23: return q(QuantType::kGgmlIQ4_XS);
    default: return std::nullopt;
  }
}
constexpr std::string_view kComputedTypes =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, "
    "Q6_K, IQ4_XS";

std::string type_name(uint32_t ggml_type) {
  const std::optional<GgmlTypeInfo> i = ggml_type_info(ggml_type);
  return i ? std::string(i->name) : str_cat("type ", ggml_type);
}

}  // namespace

bool is_gguf_model(const fs::path& path) {
  return is_gguf_file(path);
}

std::string gguf_config_json(const GgufFile& f) {
  const GgufArch& a = find_arch(f);
  const std::string p = str_cat(a.gguf, ".");
  const std::string file = f.path().string();
  auto u = [&](const std::string& key) { return static_cast<int64_t>(f.get_u64(p + key)); };
  ordered_json j;
  j["architectures"] = {std::string(a.hf)};
  j["model_type"] = std::string(a.type);
  j["hidden_act"] = "silu";
  j["num_hidden_layers"] = u("block_count");
  j["hidden_size"] = u("embedding_length");
  j["num_attention_heads"] = u("attention.head_count");
  j["num_key_value_heads"] = f.opt_u64(p + "attention.head_count_kv").value_or(f.get_u64(p + "attention.head_count"));
  if (const auto hd = f.opt_u64(p + "attention.key_length")) j["head_dim"] = *hd;
  if (const auto ctx = f.opt_u64(p + "context_length")) j["max_position_embeddings"] = *ctx;
  j["rms_norm_eps"] = f.get_f64(p + "attention.layer_norm_rms_epsilon");
  if (const auto theta = f.opt_f64(p + "rope.freq_base")) j["rope_theta"] = *theta;
  if (const auto scaling = f.opt_string(p + "rope.scaling.type"); scaling && *scaling != "none")
    j["rope_scaling"] = {{"rope_type", *scaling}};  // refused by the config parser, by name

  const int64_t experts = static_cast<int64_t>(f.opt_u64(p + "expert_count").value_or(0));
  MOE_CHECK(experts > 0, file, ": metadata key '", p, "expert_count' is missing or 0: a ", a.gguf,
            " model without experts is dense, and moe-runtime runs mixture-of-experts models");
  const ArchSpec* spec = find_architecture(a.hf);
  MOE_CHECK(spec != nullptr, "gguf: the architecture table has no ", a.hf);
  j[std::string(spec->n_experts_key)] = experts;
  j["num_experts_per_tok"] = f.get_u64(p + "expert_used_count");
  // Expert width: expert_feed_forward_length where the arch has one (Qwen), else the
  // feed_forward_length (Mixtral, OLMoE, whose experts are the MLP).
  if (spec->expert_width_key == "moe_intermediate_size") {
    j["moe_intermediate_size"] = u("expert_feed_forward_length");
    if (const auto ff = f.opt_u64(p + "feed_forward_length")) j["intermediate_size"] = *ff;
  } else {
    j["intermediate_size"] = u("feed_forward_length");
  }
  if (spec->shared_expert) j["shared_expert_intermediate_size"] = u("expert_shared_feed_forward_length");
  j["norm_topk_prob"] = f.opt_bool(p + "expert_weights_norm").value_or(a.norm_topk);
  if (const auto w = f.opt_u64(p + "attention.sliding_window"); w && *w > 0) {
    j["sliding_window"] = *w;
    j["use_sliding_window"] = true;
  } else {
    j["sliding_window"] = nullptr;
  }
  if (const auto clamp = f.opt_f64(p + "attention.clamp_kqv")) j["clip_qkv"] = *clamp;
  // Biases and ties from the tensors present, as the converters write them.
  const bool q_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  const bool o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
  if (spec->qkv_bias_key == "qkv_bias") {
    j["qkv_bias"] = q_bias;
  } else if (!spec->qkv_bias_key.empty()) {
    j[std::string(spec->qkv_bias_key)] = q_bias || o_bias;
  }
  j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
  // Qwen: the sparse layers are those with a router (decoder_sparse_step and mlp_only_layers
  // have no GGUF keys; the tensors say it).
  if (spec->sparse_layers == SparseLayers::kStepAndExclude) {
    j["decoder_sparse_step"] = 1;
    ordered_json dense = ordered_json::array();
    for (int64_t l = 0; l < j["num_hidden_layers"].get<int64_t>(); ++l)
      if (f.find_tensor(str_cat("blk.", l, ".ffn_gate_inp.weight")) == nullptr) dense.push_back(l);
    j["mlp_only_layers"] = dense;
  }
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  MOE_CHECK(embd != nullptr && embd->dims.size() == 2, file, ": tensor 'token_embd.weight' is missing or not 2-D");
  j["vocab_size"] = embd->dims[1];
  if (const auto bos = f.opt_u64("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = *bos;
  if (const auto eos = f.opt_u64("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = *eos;
  return j.dump(2);
}

ModelConfig gguf_model_config(const GgufFile& file) {
  return parse_model_config(gguf_config_json(file), file.path());
}

GgufSource::GgufSource(std::shared_ptr<const GgufFile> file, const ModelConfig& c) : file_(std::move(file)) {
  const GgufFile& f = *file_;
  const std::string path = f.path().string();
  const GgufArch& ga = arch_of_hf(c.arch->hf_name);
  const ArchSpec& a = *c.arch;

  auto view_of = [&](const GgufTensorInfo& t, const std::string& hf) {
    const std::optional<StoredType> st = stored_type(t.ggml_type);
    MOE_CHECK(st.has_value(), path, ": tensor '", t.name, "' has ggml type ", type_name(t.ggml_type),
              ", which the kernels do not compute with; supported: ", kComputedTypes);
    TensorView v;
    v.name = hf;
    v.file = path;
    v.dtype = st->dtype;
    v.quant = st->quant;
    v.shape = hf_shape(t);
    v.data = f.tensor_data(t);
    v.nbytes = t.nbytes;
    return v;
  };
  auto add = [&](const std::string& hf, TensorView v, const std::string& gguf) {
    MOE_CHECK(views_.emplace(hf, std::move(v)).second, path, ": two tensors map to '", hf, "' (the second is '", gguf,
              "')");
    origin_.emplace(hf, gguf);
  };
  // Rows of a 2-D view (or the elements of a 1-D bias) put back from ggml's interleaved-RoPE
  // order: within each head, GGUF row 2i + j holds Hugging Face row j * head_dim / 2 + i.
  auto unpermute = [&](TensorView v, int64_t heads) {
    const int64_t rows = v.shape[0];
    MOE_CHECK(rows % heads == 0 && (rows / heads) % 2 == 0, path, ": tensor '", v.name, "' has ", rows,
              " rows, not a multiple of 2 x ", heads, " heads");
    const uint64_t row_bytes = v.nbytes / static_cast<uint64_t>(rows);
    const int64_t hd = rows / heads, half = hd / 2;
    std::vector<uint8_t>& out = owned_.emplace_back(v.nbytes);
    const auto* src = static_cast<const uint8_t*>(v.data);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t i = 0; i < half; ++i)
          std::memcpy(out.data() + static_cast<uint64_t>(h * hd + j * half + i) * row_bytes,
                      src + static_cast<uint64_t>(h * hd + 2 * i + j) * row_bytes, row_bytes);
    v.data = out.data();
    return v;
  };

  const std::string moe_block = str_cat(a.moe_block, ".");
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string& n = t.name;
    if (n == "token_embd.weight") {
      add("model.embed_tokens.weight", view_of(t, "model.embed_tokens.weight"), n);
      continue;
    }
    if (n == "output_norm.weight") {
      add("model.norm.weight", view_of(t, "model.norm.weight"), n);
      continue;
    }
    if (n == "output.weight") {
      add("lm_head.weight", view_of(t, "lm_head.weight"), n);
      continue;
    }
    if (n == "rope_freqs.weight") continue;  // llama3 rope scaling factors: refused via the config
    // blk.<layer>.<name>
    int64_t layer = -1;
    std::string rest;
    if (n.rfind("blk.", 0) == 0) {
      const size_t dot = n.find('.', 4);
      if (dot != std::string::npos) {
        try {
          size_t used = 0;
          layer = std::stoll(n.substr(4, dot - 4), &used);
          if (used != dot - 4) layer = -1;
        } catch (const std::exception&) {
          layer = -1;
        }
        rest = n.substr(dot + 1);
      }
    }
    MOE_CHECK(layer >= 0 && layer < c.num_layers, path, ": tensor '", n,
              "' is not one moe-runtime knows for this architecture (expected token_embd, output_norm, output, "
              "or blk.N.* with N < ",
              c.num_layers, ")");
    const std::string L = str_cat("model.layers.", layer, ".");
    static const std::map<std::string, std::string, std::less<>> kPlain = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_v.bias", "self_attn.v_proj.bias"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"attn_output.bias", "self_attn.o_proj.bias"},
        {"attn_q_norm.weight", "self_attn.q_norm.weight"},
        {"attn_k_norm.weight", "self_attn.k_norm.weight"},
        {"ffn_gate.weight", "mlp.gate_proj.weight"},  // a dense layer's MLP
        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},
        {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
        {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
        {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
    };
    if (const auto it = kPlain.find(rest); it != kPlain.end()) {
      add(L + it->second, view_of(t, L + it->second), n);
      continue;
    }
    if (rest == "attn_q.weight" || rest == "attn_q.bias" || rest == "attn_k.weight" || rest == "attn_k.bias") {
      const bool q = rest[5] == 'q';
      const std::string hf = str_cat(L, "self_attn.", q ? "q" : "k", "_proj.", rest.substr(rest.find('.') + 1));
      TensorView v = view_of(t, hf);
      if (ga.permuted_qk) v = unpermute(std::move(v), q ? c.num_heads : c.num_kv_heads);
      add(hf, std::move(v), n);
      continue;
    }
    if (rest == "ffn_gate_inp.weight") {
      add(L + moe_block + "gate.weight", view_of(t, L + moe_block + "gate.weight"), n);
      continue;
    }
    if (rest == "ffn_gate_inp_shexp.weight") {
      TensorView v = view_of(t, L + "mlp.shared_expert_gate.weight");
      if (v.shape.size() == 1) v.shape = {1, v.shape[0]};  // converters write it 1-D or (1, H)
      add(L + "mlp.shared_expert_gate.weight", std::move(v), n);
      continue;
    }
    // Stacked experts (E, rows, K), experts outermost: one view per expert.
    const std::pair<std::string_view, std::string_view> stacked[] = {{"ffn_gate_exps.weight", a.expert_gate},
                                                                     {"ffn_up_exps.weight", a.expert_up},
                                                                     {"ffn_down_exps.weight", a.expert_down}};
    bool done = false;
    for (const auto& [gg, proj] : stacked) {
      if (rest != gg) continue;
      const TensorView all = view_of(t, n);
      MOE_CHECK(all.shape.size() == 3 && all.shape[0] == c.num_experts, path, ": tensor '", n, "' has shape ",
                shape_str(all.shape), "; expected ", c.num_experts, " experts outermost (expert_count)");
      const uint64_t each = all.nbytes / static_cast<uint64_t>(c.num_experts);
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string hf = str_cat(L, moe_block, "experts.", e, ".", proj, ".weight");
        TensorView v = all;
        v.name = hf;
        v.shape = {all.shape[1], all.shape[2]};
        v.data = static_cast<const uint8_t*>(all.data) + static_cast<uint64_t>(e) * each;
        v.nbytes = each;
        add(hf, std::move(v), n);
      }
      done = true;
    }
    if (done) continue;
    // Older Mixtral files: one tensor per expert, blk.N.ffn_gate.E.weight.
    for (const auto& [gg, proj] : {std::pair<std::string_view, std::string_view>{"ffn_gate.", a.expert_gate},
                                   {"ffn_up.", a.expert_up},
                                   {"ffn_down.", a.expert_down}}) {
      if (rest.rfind(gg, 0) != 0 || rest.size() <= gg.size() + 7 || !rest.ends_with(".weight")) continue;
      const std::string digits = rest.substr(gg.size(), rest.size() - gg.size() - 7);
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        continue;
      const std::string hf = str_cat(L, moe_block, "experts.", digits, ".", proj, ".weight");
      add(hf, view_of(t, hf), n);
      done = true;
    }
    MOE_CHECK(done, path, ": tensor '", n, "' is not one moe-runtime knows for ", ga.gguf);
  }
}

bool GgufSource::contains(std::string_view name) const {
  return views_.find(name) != views_.end();
}

TensorView GgufSource::tensor(std::string_view name) const {
  const auto it = views_.find(name);
  if (it == views_.end()) fail(file_->path().string(), ": no tensor of this GGUF file reads as '", name, "'");
  return it->second;
}

std::vector<std::string> GgufSource::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(views_.size());
  for (const auto& [n, v] : views_) names.push_back(n);
  return names;
}

std::string GgufSource::gguf_name(std::string_view hf_name) const {
  const auto it = origin_.find(hf_name);
  return it == origin_.end() ? std::string() : it->second;
}

}  // namespace moe
