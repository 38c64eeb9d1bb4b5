#include "runtime/quant/recipe.h"

#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/error.h"

namespace moe {
namespace {

struct KindKey {
  std::string_view key;
  TensorKind kind;
};

// The recipe keys, in canonical spec order.
constexpr std::array<KindKey, 7> kKindKeys = {{
    {"attn", TensorKind::kAttention},
    {"router", TensorKind::kRouter},
    {"experts", TensorKind::kExpert},
    {"shared", TensorKind::kSharedExpert},
    {"dense", TensorKind::kDenseMlp},
    {"embed", TensorKind::kEmbedding},
    {"lm_head", TensorKind::kLmHead},
}};

constexpr std::string_view kAcceptedKinds = "attn, router, experts, shared, dense, embed, lm_head, all";
constexpr std::string_view kAcceptedFormats =
    "q8, q4, q3, q2 (optionally with a group size: g16, g32, g64, g128 or g256, e.g. q4g128), f16, bf16, f32, keep";
constexpr std::string_view kPresets = "q8, q4, q3, q2, mixed-4-2, mixed-4-3, keep";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<StorageChoice> parse_choice(std::string_view text) {
  const std::string s = lower(text);
  StorageChoice c;
  if (s == "keep") return c;
  c.mode = StorageChoice::Mode::kDense;
  if (s == "f32" || s == "fp32") {
    c.dtype = DType::kF32;
    return c;
  }
  if (s == "f16" || s == "fp16") {
    c.dtype = DType::kF16;
    return c;
  }
  if (s == "bf16") {
    c.dtype = DType::kBF16;
    return c;
  }
  if (auto q = parse_quant_format(s)) {
    StorageChoice qc;
    qc.mode = StorageChoice::Mode::kQuant;
    qc.quant = *q;
    return qc;
  }
  return std::nullopt;
}

std::string choice_name(const StorageChoice& c) {
  switch (c.mode) {
    case StorageChoice::Mode::kKeep: return "keep";
    case StorageChoice::Mode::kDense: return lower(dtype_name(c.dtype));
    case StorageChoice::Mode::kQuant: return quant_format_name(c.quant);
  }
  return "keep";
}

// Every quantizable kind but the router (a small, routing-critical matrix): what `all` and the
// single-format presets set.
constexpr std::array<TensorKind, 6> kAllKinds = {TensorKind::kAttention,    TensorKind::kExpert,
                                                 TensorKind::kSharedExpert, TensorKind::kDenseMlp,
                                                 TensorKind::kEmbedding,    TensorKind::kLmHead};

std::optional<std::vector<std::pair<std::string, std::string>>> preset(std::string_view name) {
  using Parts = std::vector<std::pair<std::string, std::string>>;
  const std::string n = lower(name);
  if (n == "keep") return Parts{};
  if (n == "q8" || n == "q4" || n == "q3" || n == "q2") return Parts{{"all", n}};
  if (n == "mixed-4-2") return Parts{{"attn", "q4g64"}, {"experts", "q2g16"}, {"shared", "q4g64"}, {"dense", "q4g64"}};
  if (n == "mixed-4-3") return Parts{{"attn", "q4g64"}, {"experts", "q3g64"}, {"shared", "q4g64"}, {"dense", "q4g64"}};
  return std::nullopt;
}

}  // namespace

QuantRecipe QuantRecipe::parse(std::string_view spec) {
  QuantRecipe r;
  const std::string_view whole = trim(spec);
  MOE_CHECK(!whole.empty(), "quantization recipe is empty; give a preset (", kPresets,
            ") or kind=format pairs such as attn=q4,experts=q2g16 (kinds: ", kAcceptedKinds,
            "; formats: ", kAcceptedFormats, ")");
  auto apply = [&](std::string_view key_text, std::string_view value_text, std::string_view part) {
    const std::string key = lower(trim(key_text));
    const std::string_view value = trim(value_text);
    const std::optional<StorageChoice> choice = parse_choice(value);
    MOE_CHECK(choice.has_value(), "quantization recipe '", whole, "': '", part, "': unknown format '", value,
              "'; accepted: ", kAcceptedFormats);
    auto set = [&](TensorKind k) {
      if (choice->mode == StorageChoice::Mode::kKeep)
        r.choices_.erase(k);
      else
        r.choices_[k] = *choice;
    };
    if (key == "all") {
      for (const TensorKind k : kAllKinds) set(k);
      return;
    }
    for (const KindKey& kk : kKindKeys) {
      if (kk.key == key) {
        set(kk.kind);
        return;
      }
    }
    fail("quantization recipe '", whole, "': '", part, "': unknown tensor kind '", trim(key_text),
         "'; accepted: ", kAcceptedKinds, " (norms and biases are always kept)");
  };

  size_t pos = 0;
  while (pos <= whole.size()) {
    const size_t comma = whole.find(',', pos);
    const size_t end = comma == std::string_view::npos ? whole.size() : comma;
    const std::string_view part = trim(whole.substr(pos, end - pos));
    MOE_CHECK(!part.empty(), "quantization recipe '", whole, "': empty entry between commas");
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      const auto p = preset(part);
      MOE_CHECK(p.has_value(), "quantization recipe '", whole, "': '", part, "' is neither a preset (", kPresets,
                ") nor kind=format (kinds: ", kAcceptedKinds, "; formats: ", kAcceptedFormats, ")");
      for (const auto& [k, v] : *p) apply(k, v, part);
    } else {
      apply(part.substr(0, eq), part.substr(eq + 1), part);
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return r;
}

StorageChoice QuantRecipe::choice(TensorKind kind) const {
  const auto it = choices_.find(kind);
  return it == choices_.end() ? StorageChoice{} : it->second;
}

std::string QuantRecipe::spec() const {
  std::string out;
  for (const KindKey& kk : kKindKeys) {
    const auto it = choices_.find(kk.kind);
    if (it == choices_.end()) continue;
    if (!out.empty()) out += ',';
    out += str_cat(kk.key, "=", choice_name(it->second));
  }
  return out.empty() ? "keep" : out;
}

std::string_view tensor_kind_name(TensorKind kind) {
  switch (kind) {
    case TensorKind::kAttention: return "attn";
    case TensorKind::kRouter: return "router";
    case TensorKind::kExpert: return "experts";
    case TensorKind::kSharedExpert: return "shared";
    case TensorKind::kDenseMlp: return "dense";
    case TensorKind::kEmbedding: return "embed";
    case TensorKind::kLmHead: return "lm_head";
    case TensorKind::kNorm: return "norm";
    case TensorKind::kBias: return "bias";
  }
  return "?";
}

namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// `rest` after "<block>.experts.": "E.<gate|up|down>.weight" or the fused "gate_up_proj"/"down_proj".
bool is_expert_suffix(std::string_view rest, const ArchSpec& arch) {
  if (rest == "gate_up_proj" || rest == "down_proj") return true;
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || !is_digits(rest.substr(0, dot))) return false;
  const std::string_view proj = rest.substr(dot + 1);
  for (const std::string_view p : {arch.expert_gate, arch.expert_up, arch.expert_down})
    if (proj == str_cat(p, ".weight")) return true;
  return false;
}

}  // namespace

TensorKind classify_tensor(std::string_view name, const ArchSpec& arch) {
  auto unknown = [&]() -> TensorKind {
    fail("tensor '", name, "' is not a ", arch.hf_name,
         " tensor this converter knows; accepted: model.embed_tokens.weight, lm_head.weight, model.norm.weight, "
         "and under model.layers.N.: input_layernorm/post_attention_layernorm.weight, "
         "self_attn.{q,k,v,o}_proj.{weight,bias}, self_attn.{q,k}_norm.weight, ",
         arch.moe_block, ".gate.weight, ", arch.moe_block, ".experts.E.{", arch.expert_gate, ",", arch.expert_up, ",",
         arch.expert_down, "}.weight, mlp.experts.{gate_up_proj,down_proj}, ",
         arch.shared_expert ? "mlp.shared_expert.*, mlp.shared_expert_gate.weight, " : "",
         "mlp.{gate,up,down}_proj.weight (dense layers)");
  };
  if (name == "model.embed_tokens.weight") return TensorKind::kEmbedding;
  if (name == "lm_head.weight") return TensorKind::kLmHead;
  if (name == "model.norm.weight") return TensorKind::kNorm;
  constexpr std::string_view kLayers = "model.layers.";
  if (!starts_with(name, kLayers)) return unknown();
  std::string_view r = name.substr(kLayers.size());
  const size_t dot = r.find('.');
  if (dot == std::string_view::npos || !is_digits(r.substr(0, dot))) return unknown();
  r = r.substr(dot + 1);

  if (r == "input_layernorm.weight" || r == "post_attention_layernorm.weight") return TensorKind::kNorm;
  if (starts_with(r, "self_attn.")) {
    const std::string_view a = r.substr(10);
    if (a == "q_norm.weight" || a == "k_norm.weight") return TensorKind::kNorm;
    for (const std::string_view p : {"q_proj.", "k_proj.", "v_proj.", "o_proj."}) {
      if (a == str_cat(p, "weight")) return TensorKind::kAttention;
      if (a == str_cat(p, "bias")) return TensorKind::kBias;
    }
    return unknown();
  }
  // The MoE block under the arch's Hub name, or transformers 5's `mlp` (fused form).
  for (const std::string_view block : {arch.moe_block, std::string_view("mlp")}) {
    const std::string prefix = str_cat(block, ".");
    if (!starts_with(r, prefix)) continue;
    const std::string_view b = r.substr(prefix.size());
    if (b == "gate.weight") return TensorKind::kRouter;
    if (starts_with(b, "experts.") && is_expert_suffix(b.substr(8), arch)) return TensorKind::kExpert;
    if (starts_with(b, "shared_expert.") || starts_with(b, "shared_expert_gate.")) {
      if (b.size() > 5 && b.substr(b.size() - 5) == ".bias") return TensorKind::kBias;
      return TensorKind::kSharedExpert;
    }
  }
  if (r == "mlp.gate_proj.weight" || r == "mlp.up_proj.weight" || r == "mlp.down_proj.weight")
    return TensorKind::kDenseMlp;
  return unknown();
}

}  // namespace moe
