#include "runtime/model/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"

namespace moe {
namespace {

using nlohmann::json;

// Typed access to config.json with errors that name the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& j, const std::filesystem::path& source) : j_(j), source_(source) {}

  bool has(std::string_view key) const {
    auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
  }

  int64_t require_int(std::string_view key) const {
    if (!has(key)) fail(source_.string(), ": required key '", key, "' is missing");
    return as_int(key, j_.at(std::string(key)));
  }
  int64_t get_int(std::string_view key, int64_t fallback) const {
    return has(key) ? as_int(key, j_.at(std::string(key))) : fallback;
  }
  double get_float(std::string_view key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(std::string(key));
    if (!v.is_number()) bad_type(key, "a number", v);
    return v.get<double>();
  }
  bool get_bool(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(std::string(key));
    if (!v.is_boolean()) bad_type(key, "true or false", v);
    return v.get<bool>();
  }
  std::string get_string(std::string_view key, std::string fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(std::string(key));
    if (!v.is_string()) bad_type(key, "a string", v);
    return v.get<std::string>();
  }
  // An int, a list of ints, or null/absent (empty).
  std::vector<int64_t> get_int_list(std::string_view key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(std::string(key));
    if (v.is_number_integer()) {
      out.push_back(v.get<int64_t>());
      return out;
    }
    if (!v.is_array()) bad_type(key, "an integer or a list of integers", v);
    for (const json& e : v) {
      if (!e.is_number_integer()) bad_type(key, "a list of integers", v);
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  const json& raw(std::string_view key) const { return j_.at(std::string(key)); }
  const std::filesystem::path& source() const { return source_; }

  [[noreturn]] void bad_type(std::string_view key, std::string_view want, const json& got) const {
    fail(source_.string(), ": key '", key, "' must be ", want, ", found ", json_excerpt(got));
  }

 private:
  int64_t as_int(std::string_view key, const json& v) const {
    if (!v.is_number_integer()) bad_type(key, "an integer", v);
    return v.get<int64_t>();
  }
  const json& j_;
  const std::filesystem::path& source_;
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open (", std::strerror(errno), ")");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_json(const std::string& text, const std::filesystem::path& source) {
  check_json_depth(text, source.string());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number such as 1e400
    fail(source.string(), ": invalid JSON: ", e.what());
  }
}

std::string supported_list() {
  std::string s;
  for (const ArchSpec& a : supported_architectures()) s += (s.empty() ? "" : ", ") + std::string(a.hf_name);
  return s;
}

const ArchSpec& resolve_architecture(const ConfigReader& r) {
  const std::string model_type = r.get_string("model_type", "");
  std::string name;
  if (r.has("architectures")) {
    const json& a = r.raw("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string()) r.bad_type("architectures", "a non-empty list of strings", a);
    name = a[0].get<std::string>();
  }
  const ArchSpec* spec = nullptr;
  if (!name.empty()) {
    spec = find_architecture(name);
    if (!spec) fail(r.source().string(), ": unknown architecture '", name, "'; supported: ", supported_list());
  } else {
    for (const ArchSpec& a : supported_architectures())
      if (a.model_type == model_type) spec = &a;
    if (!spec)
      fail(r.source().string(), ": no 'architectures' key and unknown model_type '", model_type,
           "'; supported: ", supported_list());
  }
  if (!model_type.empty() && model_type != spec->model_type)
    fail(r.source().string(), ": contradictory keys: architectures[0] is '", spec->hf_name, "' but model_type is '",
         model_type, "' (expected '", spec->model_type, "')");
  return *spec;
}

// rope_theta from rope_parameters (transformers >= 5), rope_scaling (older), or rope_theta.
float resolve_rope_theta(const ConfigReader& r, const ArchSpec& spec) {
  double theta = r.get_float("rope_theta", spec.default_rope_theta);
  for (std::string_view key : {"rope_parameters", "rope_scaling"}) {
    if (!r.has(key)) continue;
    const json& p = r.raw(key);
    if (!p.is_object()) r.bad_type(key, "an object", p);
    std::string type = "default";
    if (p.contains("rope_type") && p["rope_type"].is_string())
      type = p["rope_type"].get<std::string>();
    else if (p.contains("type") && p["type"].is_string())
      type = p["type"].get<std::string>();
    if (type != "default")
      fail(r.source().string(), ": ", key, ".rope_type '", type,
           "' is not supported yet (only the default RoPE is implemented)");
    if (p.contains("partial_rotary_factor") && p["partial_rotary_factor"].is_number() &&
        p["partial_rotary_factor"].get<double>() != 1.0)
      fail(r.source().string(), ": ", key, ".partial_rotary_factor != 1 is not supported yet");
    if (p.contains("rope_theta")) {
      if (!p["rope_theta"].is_number()) r.bad_type(std::string(key) + ".rope_theta", "a number", p["rope_theta"]);
      theta = p["rope_theta"].get<double>();
    }
  }
  if (!(theta > 0)) fail(r.source().string(), ": rope_theta must be positive, found ", theta);
  return static_cast<float>(theta);
}

void resolve_layer_kinds(const ConfigReader& r, const ArchSpec& spec, ModelConfig& c) {
  c.layer_is_moe.assign(static_cast<size_t>(c.num_layers), true);
  switch (spec.sparse_layers) {
    case SparseLayers::kAll: break;
    case SparseLayers::kStepAndExclude: {
      const int64_t step = r.get_int("decoder_sparse_step", 1);
      if (step < 1) fail(r.source().string(), ": decoder_sparse_step must be >= 1, found ", step);
      const std::vector<int64_t> only_mlp = r.get_int_list("mlp_only_layers");
      for (int64_t i : only_mlp)
        if (i < 0 || i >= c.num_layers)
          fail(r.source().string(), ": mlp_only_layers names layer ", i, " but num_hidden_layers is ", c.num_layers);
      for (int64_t i = 0; i < c.num_layers; ++i) {
        const bool excluded = std::find(only_mlp.begin(), only_mlp.end(), i) != only_mlp.end();
        c.layer_is_moe[static_cast<size_t>(i)] = !excluded && (i + 1) % step == 0;
      }
      break;
    }
  }
}

void resolve_windows(const ConfigReader& r, const ArchSpec& spec, ModelConfig& c) {
  c.layer_window.assign(static_cast<size_t>(c.num_layers), 0);
  auto window_value = [&] {
    const int64_t w = r.get_int("sliding_window", 0);
    if (w < 0) fail(r.source().string(), ": sliding_window must be >= 0, found ", w);
    return w;
  };
  switch (spec.sliding_window) {
    case SlidingWindow::kNone: return;
    case SlidingWindow::kAllLayers: c.layer_window.assign(static_cast<size_t>(c.num_layers), window_value()); return;
    case SlidingWindow::kUseFlag:
      if (r.get_bool("use_sliding_window", false))
        c.layer_window.assign(static_cast<size_t>(c.num_layers), window_value());
      return;
    case SlidingWindow::kLayerTypes: {
      if (!r.get_bool("use_sliding_window", false)) return;
      const int64_t w = window_value();
      if (r.has("layer_types")) {
        const json& t = r.raw("layer_types");
        if (!t.is_array() || static_cast<int64_t>(t.size()) != c.num_layers)
          r.bad_type("layer_types", "a list with one entry per layer", t);
        for (size_t i = 0; i < t.size(); ++i) {
          const std::string kind = t[i].is_string() ? t[i].get<std::string>() : "";
          if (kind == "sliding_attention")
            c.layer_window[i] = w;
          else if (kind != "full_attention")
            fail(r.source().string(), ": layer_types[", i, "] is ", json_excerpt(t[i]),
                 ", expected \"full_attention\" or \"sliding_attention\"");
        }
      } else {
        const int64_t max_window_layers = r.get_int("max_window_layers", 28);
        for (int64_t i = 0; i < c.num_layers; ++i)
          if ((i + 1) % 2 != 0 && i < max_window_layers) c.layer_window[static_cast<size_t>(i)] = w;
      }
      return;
    }
  }
}

// Token ids of `key` (an int, a list or null), each checked against the vocabulary before it
// is narrowed to 32 bits. transformers accepts a config whose special ids lie outside the
// vocabulary (such a token is never generated), so such an id is dropped with a warning rather
// than refused; a value that is not an integer is still an error.
std::vector<int32_t> token_ids(const ConfigReader& r, std::string_view key, int64_t vocab_size,
                               std::vector<std::string>& warnings) {
  std::vector<int32_t> ids;
  for (int64_t v : r.get_int_list(key)) {
    if (v < 0 || v >= vocab_size) {
      warnings.push_back(
          str_cat(r.source().string(), ": ", key, " ", v, " is outside the vocabulary [0, ", vocab_size, "): ignored"));
      continue;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void append_unique(std::vector<int32_t>& ids, const std::vector<int32_t>& more) {
  for (int32_t v : more)
    if (std::find(ids.begin(), ids.end(), v) == ids.end()) ids.push_back(v);
}

// The expert count and the key it was read from (Qwen3-MoE accepts two spellings).
std::pair<int64_t, std::string_view> resolve_expert_count(const ConfigReader& r, const ArchSpec& spec) {
  if (spec.n_experts_alt_key.empty() || !r.has(spec.n_experts_alt_key))
    return {r.require_int(spec.n_experts_key), spec.n_experts_key};
  const int64_t alt = r.require_int(spec.n_experts_alt_key);
  if (!r.has(spec.n_experts_key)) return {alt, spec.n_experts_alt_key};
  const int64_t main = r.require_int(spec.n_experts_key);
  if (main != alt)
    fail(r.source().string(), ": contradictory keys: ", spec.n_experts_key, " is ", main, " but ",
         spec.n_experts_alt_key, " is ", alt);
  return {main, spec.n_experts_key};
}

void check_positive(const ConfigReader& r, std::string_view key, int64_t v) {
  if (v <= 0) fail(r.source().string(), ": ", key, " must be positive, found ", v);
}

// Upper bounds on what a config may describe, far above any released model (the largest have
// about 128 layers, hidden 16k, 512 experts, vocab 256k, 1T parameters), so that a damaged or
// hostile config.json fails here rather than in a multi-gigabyte allocation or an overflow of
// the size arithmetic downstream. docs/architecture.md lists them.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxWidth = int64_t{1} << 20;  // hidden, intermediate, head_dim, heads
constexpr int64_t kMaxExperts = int64_t{1} << 16;
constexpr int64_t kMaxVocab = int64_t{1} << 24;  // token ids are int32
constexpr double kMaxParameters = 1e15;

void check_at_most(const ConfigReader& r, std::string_view key, int64_t v, int64_t limit) {
  if (v > limit)
    fail(r.source().string(), ": ", key, " ", v, " is larger than this runtime supports (at most ", limit, ")");
}

// Parameters the config describes, in double (cannot overflow), against kMaxParameters.
void check_parameter_count(const ConfigReader& r, const ModelConfig& c) {
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  const double attn = d(c.hidden_size) * d(c.q_width() + 2 * c.kv_width()) + d(c.q_width()) * d(c.hidden_size);
  const double moe = d(c.num_experts) * 3 * d(c.hidden_size) * d(c.expert_intermediate) +
                     3 * d(c.hidden_size) * d(c.shared_intermediate + c.dense_intermediate);
  const double total = d(c.num_layers) * (attn + moe) + 2 * d(c.vocab_size) * d(c.hidden_size);
  if (total > kMaxParameters)
    fail(r.source().string(), ": the config describes about ", total, " parameters, more than this runtime supports (",
         kMaxParameters, ")");
}

}  // namespace

bool ModelConfig::has_dense_layers() const {
  return std::find(layer_is_moe.begin(), layer_is_moe.end(), false) != layer_is_moe.end();
}

std::string ModelConfig::summary() const {
  return str_cat(arch->hf_name, ": ", num_layers, " layers, hidden ", hidden_size, ", ", num_heads, "/", num_kv_heads,
                 " heads x ", head_dim, ", ", num_experts, " experts top-", experts_per_token, " x ",
                 expert_intermediate, shared_intermediate ? str_cat(" + shared ", shared_intermediate) : "", ", vocab ",
                 vocab_size);
}

ModelConfig parse_model_config(const std::string& json_text, const std::filesystem::path& source) {
  const json j = parse_json(json_text, source);
  if (!j.is_object()) fail(source.string(), ": config must be a JSON object");
  const ConfigReader r(j, source);
  const ArchSpec& spec = resolve_architecture(r);

  ModelConfig c;
  c.source = source;
  c.arch = &spec;
  c.vocab_size = r.require_int("vocab_size");
  c.hidden_size = r.require_int("hidden_size");
  c.num_layers = r.require_int("num_hidden_layers");
  c.num_heads = r.require_int("num_attention_heads");
  c.num_kv_heads = r.get_int("num_key_value_heads", c.num_heads);
  for (auto [k, v] : {std::pair<std::string_view, int64_t>{"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size},
                      {"num_hidden_layers", c.num_layers},
                      {"num_attention_heads", c.num_heads},
                      {"num_key_value_heads", c.num_kv_heads}})
    check_positive(r, k, v);
  check_at_most(r, "vocab_size", c.vocab_size, kMaxVocab);
  check_at_most(r, "hidden_size", c.hidden_size, kMaxWidth);
  check_at_most(r, "num_hidden_layers", c.num_layers, kMaxLayers);
  check_at_most(r, "num_attention_heads", c.num_heads, kMaxWidth);
  check_at_most(r, "num_key_value_heads", c.num_kv_heads, kMaxWidth);
  if (c.num_heads % c.num_kv_heads != 0)
    fail(source.string(), ": contradictory keys: num_attention_heads ", c.num_heads,
         " is not a multiple of num_key_value_heads ", c.num_kv_heads);
  if (r.has("head_dim")) {
    c.head_dim = r.require_int("head_dim");
    check_positive(r, "head_dim", c.head_dim);
    check_at_most(r, "head_dim", c.head_dim, kMaxWidth);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(source.string(), ": hidden_size ", c.hidden_size, " is not divisible by num_attention_heads ", c.num_heads,
           " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) fail(source.string(), ": head_dim ", c.head_dim, " must be even for RoPE");
  c.max_position_embeddings = r.get_int("max_position_embeddings", 4096);

  const std::string act = r.get_string("hidden_act", "silu");
  if (act != "silu") fail(source.string(), ": hidden_act '", act, "' is not supported (only silu)");

  const auto [num_experts, experts_key] = resolve_expert_count(r, spec);
  c.num_experts = num_experts;
  c.experts_per_token = r.require_int("num_experts_per_tok");
  c.expert_intermediate = r.require_int(spec.expert_width_key);
  check_positive(r, experts_key, c.num_experts);
  check_positive(r, "num_experts_per_tok", c.experts_per_token);
  check_positive(r, spec.expert_width_key, c.expert_intermediate);
  check_at_most(r, experts_key, c.num_experts, kMaxExperts);
  check_at_most(r, spec.expert_width_key, c.expert_intermediate, kMaxWidth);
  if (c.experts_per_token > c.num_experts)
    fail(source.string(), ": contradictory keys: num_experts_per_tok ", c.experts_per_token, " > ", experts_key, " ",
         c.num_experts);
  switch (spec.renormalize) {
    case Renormalize::kAlways: c.renormalize_topk = true; break;
    case Renormalize::kFromConfig: c.renormalize_topk = r.get_bool("norm_topk_prob", false); break;
  }

  resolve_layer_kinds(r, spec, c);
  if (c.has_dense_layers()) {
    c.dense_intermediate = r.require_int("intermediate_size");
    check_positive(r, "intermediate_size", c.dense_intermediate);
    check_at_most(r, "intermediate_size", c.dense_intermediate, kMaxWidth);
  }
  if (spec.shared_expert) {
    c.shared_intermediate = r.require_int("shared_expert_intermediate_size");
    check_positive(r, "shared_expert_intermediate_size", c.shared_intermediate);
    check_at_most(r, "shared_expert_intermediate_size", c.shared_intermediate, kMaxWidth);
  }
  check_parameter_count(r, c);

  if (!spec.qkv_bias_key.empty()) c.qkv_bias = r.get_bool(spec.qkv_bias_key, spec.qkv_bias_default);
  c.o_bias = spec.o_proj_bias_follows_key && c.qkv_bias;
  if (spec.clip_qkv && r.has("clip_qkv")) {
    const double clip = r.get_float("clip_qkv", 0);
    if (!(clip > 0)) fail(source.string(), ": clip_qkv must be positive, found ", clip);
    c.clip_qkv = static_cast<float>(clip);
  }
  c.rms_norm_eps = static_cast<float>(r.get_float("rms_norm_eps", spec.default_rms_norm_eps));
  if (!(c.rms_norm_eps > 0)) fail(source.string(), ": rms_norm_eps must be positive");
  c.rope_theta = resolve_rope_theta(r, spec);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  resolve_windows(r, spec, c);

  const std::vector<int32_t> bos = token_ids(r, "bos_token_id", c.vocab_size, c.warnings);
  if (!bos.empty()) c.bos_token_id = bos.front();
  append_unique(c.eos_token_ids, token_ids(r, "eos_token_id", c.vocab_size, c.warnings));
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  if (!std::filesystem::exists(path))
    fail(path.string(), ": not found (a Hugging Face model directory has a config.json)");
  ModelConfig c = parse_model_config(read_text(path), path);
  const std::filesystem::path gen = model_dir / "generation_config.json";
  if (std::filesystem::exists(gen)) {
    const json g = parse_json(read_text(gen), gen);
    if (g.is_object()) {
      const ConfigReader r(g, gen);
      append_unique(c.eos_token_ids, token_ids(r, "eos_token_id", c.vocab_size, c.warnings));
    }
  }
  return c;
}

}  // namespace moe
