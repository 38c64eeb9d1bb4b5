#include "runtime/quant/convert.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/io/packed_store_writer.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/config.h"
#include "runtime/model/gguf_source.h"
#include "runtime/tokenizer/gguf_vocab.h"

#ifndef MOE_VERSION
#define MOE_VERSION "0.1.0"
#endif

namespace moe {
namespace fs = std::filesystem;

namespace {

// One tensor as it is read: a whole source tensor or one expert's slice of a fused one.
struct Source {
  std::string name;  // source tensor name (for messages)
  std::string file;
  DType dtype = DType::kF32;
  const uint8_t* data = nullptr;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::optional<QuantFormat> quant;  // ggml blocks from a GGUF file: kept as they are
};

struct Item {
  std::string name;  // name in the store
  TensorKind kind = TensorKind::kNorm;
  Source src;
};

struct ExpertSources {
  std::optional<Source> gate, up, down;
};

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

Source whole(const TensorView& v) {
  return Source{.name = v.name,
                .file = v.file,
                .dtype = v.dtype,
                .data = static_cast<const uint8_t*>(v.data),
                .shape = v.shape,
                .bytes = v.nbytes,
                .quant = v.quant};
}

// Rows [row0, row0 + rows) of matrix `index` of a 3-D tensor, as a 2-D source.
Source slice(const TensorView& v, int64_t index, int64_t row0, int64_t rows) {
  const int bits = dtype_bits(v.dtype);
  MOE_CHECK(bits % 8 == 0, v.file, ": tensor '", v.name, "' of ", dtype_name(v.dtype),
            " cannot be split into per-expert tensors");
  const uint64_t elt = static_cast<uint64_t>(bits / 8);
  const int64_t cols = v.shape[2];
  const uint64_t first = static_cast<uint64_t>((index * v.shape[1] + row0) * cols);
  return Source{.name = str_cat(v.name, "[", index, "]",
                                row0 == 0 && rows == v.shape[1] ? "" : str_cat("[rows ", row0, ":", row0 + rows, "]")),
                .file = v.file,
                .dtype = v.dtype,
                .data = static_cast<const uint8_t*>(v.data) + first * elt,
                .shape = {rows, cols},
                .bytes = static_cast<uint64_t>(rows * cols) * elt,
                .quant = std::nullopt};
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "model.layers.N.<rest>" -> (N, rest); nullopt for other names.
std::optional<std::pair<int64_t, std::string_view>> split_layer(std::string_view name) {
  constexpr std::string_view kLayers = "model.layers.";
  if (name.substr(0, kLayers.size()) != kLayers) return std::nullopt;
  const std::string_view r = name.substr(kLayers.size());
  const size_t dot = r.find('.');
  if (dot == std::string_view::npos || !is_digits(r.substr(0, dot))) return std::nullopt;
  return std::make_pair(std::stoll(std::string(r.substr(0, dot))), r.substr(dot + 1));
}

// Non-expert order: embeddings, layers by number (names sorted within a layer), the rest of model.*, lm_head.
std::tuple<int, int64_t, std::string> order_key(const std::string& name) {
  if (auto l = split_layer(name)) return {1, l->first, name};
  if (name.find("embed") != std::string::npos) return {0, 0, name};
  return {name.starts_with("model.") ? 2 : 3, 0, name};  // final norm, then lm_head
}

std::string storage_text(const StorageChoice& c, DType src) {
  switch (c.mode) {
    case StorageChoice::Mode::kKeep: return str_cat(dtype_name(src), " (kept)");
    case StorageChoice::Mode::kDense: return std::string(dtype_name(c.dtype));
    case StorageChoice::Mode::kQuant: return quant_format_name(c.quant);
  }
  return "?";
}

// Checks that `choice` can hold `src`, before anything is written.
void check_choice(const Item& it, const StorageChoice& c) {
  if (c.mode == StorageChoice::Mode::kKeep) return;
  MOE_CHECK(!it.src.quant, it.src.file, ": tensor '", it.src.name, "' (", tensor_kind_name(it.kind), ") is stored as ",
            it.src.quant ? quant_format_name(*it.src.quant) : "", "; blocks of a GGUF file are kept as they are, not ",
            "converted to ", storage_text(c, it.src.dtype), " (use keep for ", tensor_kind_name(it.kind),
            " in the recipe, e.g. --quant all=keep)");
  MOE_CHECK(dtype_is_compute(it.src.dtype), it.src.file, ": tensor '", it.src.name, "' (", tensor_kind_name(it.kind),
            ") has dtype ", dtype_name(it.src.dtype), "; only F32, F16 and BF16 tensors can be stored as ",
            storage_text(c, it.src.dtype), " (use keep for this kind)");
  if (c.mode != StorageChoice::Mode::kQuant) return;
  const int64_t k = it.src.shape.empty() ? 1 : it.src.shape.back();
  MOE_CHECK(k > 0 && k % c.quant.group_size == 0, "tensor '", it.name, "' (", tensor_kind_name(it.kind), ", shape ",
            shape_str(it.src.shape), ") cannot be stored as ", quant_format_name(c.quant), ": its row length ", k,
            " is not a multiple of the group size ", c.quant.group_size, "; choose another group size or format for ",
            tensor_kind_name(it.kind), " in the recipe");
}

void to_f32(const uint8_t* src, DType t, int64_t n, float* out) {
  switch (compute_type(t)) {
    case ComputeType::kF32: std::memcpy(out, src, static_cast<size_t>(n) * 4); return;
    case ComputeType::kF16: {
      const auto* p = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    case ComputeType::kBF16: {
      const auto* p = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
  }
}

void from_f32(const float* src, int64_t n, DType t, uint8_t* out) {
  switch (compute_type(t)) {
    case ComputeType::kF32: std::memcpy(out, src, static_cast<size_t>(n) * 4); return;
    case ComputeType::kF16: {
      auto* p = reinterpret_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) p[i] = f32_to_f16(src[i]);
      return;
    }
    case ComputeType::kBF16: {
      auto* p = reinterpret_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) p[i] = f32_to_bf16(src[i]);
      return;
    }
  }
}

constexpr int64_t kChunkElements = int64_t{1} << 22;  // 16 MiB of f32 per step

struct ErrorSums {
  double err2 = 0, norm2 = 0;
};

class Converter {
 public:
  Converter(PackedStoreWriter& w, const QuantizeOptions& opt, uint64_t total,
            const std::function<void(const ConvertProgress&)>& progress)
      : w_(w), opt_(opt), progress_(progress) {
    p_.bytes_total = total;
  }

  void write(const Item& it, const StorageChoice& c) {
    p_.tensor = it.name;
    const Source& s = it.src;
    if (c.mode == StorageChoice::Mode::kKeep || (c.mode == StorageChoice::Mode::kDense && c.dtype == s.dtype)) {
      w_.begin_tensor(it.name, s.shape, s.dtype, s.quant, s.bytes);
      constexpr uint64_t kStep = uint64_t{64} << 20;
      for (uint64_t off = 0; off < s.bytes || off == 0; off += kStep) {
        const uint64_t n = std::min(kStep, s.bytes - off);
        w_.append(s.data + off, static_cast<size_t>(n));
        advance(n, s.bytes <= kStep ? 0 : 1);
        if (s.bytes == 0) break;
      }
      w_.end_tensor();
      tick();
      return;
    }
    if (c.mode == StorageChoice::Mode::kDense) {
      const int64_t n = numel(s.shape);
      const uint64_t in_elt = static_cast<uint64_t>(dtype_bits(s.dtype) / 8);
      const uint64_t out_elt = static_cast<uint64_t>(dtype_bits(c.dtype) / 8);
      w_.begin_tensor(it.name, s.shape, c.dtype, std::nullopt, static_cast<uint64_t>(n) * out_elt);
      for (int64_t i = 0; i < n; i += kChunkElements) {
        const int64_t m = std::min(kChunkElements, n - i);
        f32_.resize(static_cast<size_t>(m));
        out_.resize(static_cast<size_t>(m) * out_elt);
        to_f32(s.data + static_cast<uint64_t>(i) * in_elt, s.dtype, m, f32_.data());
        from_f32(f32_.data(), m, c.dtype, out_.data());
        w_.append(out_.data(), out_.size());
        advance(static_cast<uint64_t>(m) * in_elt, 1);
      }
      w_.end_tensor();
      tick();
      return;
    }
    // Quantized: rows along the last dimension, a chunk of rows at a time.
    const QuantFormat f = c.quant;
    const int64_t k = s.shape.empty() ? 1 : s.shape.back();
    const int64_t rows = k == 0 ? 0 : numel(s.shape) / k;
    const uint64_t in_elt = static_cast<uint64_t>(dtype_bits(s.dtype) / 8);
    const uint64_t row_bytes = quant_row_bytes(f, k);
    w_.begin_tensor(it.name, s.shape, DType::kF32, f, static_cast<uint64_t>(rows) * row_bytes);
    const int64_t step = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(k, 1));
    ErrorSums& e = errors_[std::string(tensor_kind_name(it.kind))];
    for (int64_t r = 0; r < rows; r += step) {
      const int64_t m = std::min(step, rows - r);
      const size_t cnt = static_cast<size_t>(m * k);
      f32_.resize(cnt);
      deq_.resize(cnt);
      out_.resize(static_cast<size_t>(m) * row_bytes);
      to_f32(s.data + static_cast<uint64_t>(r * k) * in_elt, s.dtype, m * k, f32_.data());
      for (size_t i = 0; i < cnt; ++i)
        MOE_CHECK(std::isfinite(f32_[i]), s.file, ": tensor '", s.name, "' holds a non-finite value (", f32_[i],
                  ") at element ", static_cast<int64_t>(i) + r * k, "; it cannot be quantized");
      quantize_rows(f32_.data(), m, k, f, opt_, out_.data());
      w_.append(out_.data(), out_.size());
      dequantize_rows(out_.data(), m, k, f, deq_.data());
      double err2 = 0, norm2 = 0;
      for (size_t i = 0; i < cnt; ++i) {
        const double w = f32_[i], d = w - static_cast<double>(deq_[i]);
        err2 += d * d;
        norm2 += w * w;
      }
      e.err2 += err2;
      e.norm2 += norm2;
      advance(static_cast<uint64_t>(m * k) * in_elt, 1);
    }
    w_.end_tensor();
    tick();
  }

  std::map<std::string, double> relative_errors() const {
    std::map<std::string, double> out;
    for (const auto& [kind, e] : errors_) out[kind] = e.norm2 > 0 ? std::sqrt(e.err2 / e.norm2) : 0.0;
    return out;
  }

 private:
  // Source bytes done; reports within a tensor only for tensors spanning several steps.
  void advance(uint64_t n, int report) {
    p_.bytes_done += n;
    if (report && progress_) progress_(p_);
  }
  void tick() {
    if (progress_) progress_(p_);
  }

  PackedStoreWriter& w_;
  const QuantizeOptions& opt_;
  const std::function<void(const ConvertProgress&)>& progress_;
  ConvertProgress p_;
  std::vector<float> f32_, deq_;
  std::vector<uint8_t> out_;
  std::map<std::string, ErrorSums> errors_;
};

// 0.7f -> 0.7 in the manifest rather than 0.699999988079071.
double round6(float v) {
  return std::round(static_cast<double>(v) * 1e6) / 1e6;
}

nlohmann::ordered_json quantizer_json(const QuantizeOptions& o) {
  nlohmann::ordered_json q = nlohmann::ordered_json::object();
  switch (o.quantizer) {
    case Quantizer::kRtn: q["name"] = "rtn"; break;
    case Quantizer::kHqq:
      q["name"] = "hqq";
      q["iterations"] = o.hqq_iterations;
      q["lp_norm"] = round6(o.hqq_lp_norm);
      q["beta"] = round6(o.hqq_beta);
      q["kappa"] = round6(o.hqq_kappa);
      break;
  }
  return q;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  MOE_CHECK(in.good(), p.string(), ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

ConvertStats convert_checkpoint(const fs::path& hf_dir, const QuantRecipe& recipe, const QuantizeOptions& options,
                                const fs::path& out, const std::function<void(const ConvertProgress&)>& progress,
                                bool replace) {
  const auto t0 = std::chrono::steady_clock::now();
  // The source: a Hugging Face directory, or a GGUF file read under the Hugging Face names
  // (runtime/model/gguf_source.h), its tensors in their stored types.
  const bool from_gguf = is_gguf_model(hf_dir);
  std::optional<SafetensorsCheckpoint> st;
  std::unique_ptr<GgufSource> gg;
  std::string config_text;
  ModelConfig config;
  if (from_gguf) {
    auto file = std::make_shared<const GgufFile>(GgufFile::open(hf_dir));
    config_text = gguf_config_json(*file);
    config = parse_model_config(config_text, hf_dir);
    gg = std::make_unique<GgufSource>(std::move(file), config);
  } else {
    config = load_model_config(hf_dir);
    st.emplace(SafetensorsCheckpoint::open(hf_dir));
    config_text = read_text(hf_dir / "config.json");
  }
  const ArchSpec& a = *config.arch;
  const std::string src_dir = hf_dir.string();  // for messages
  const std::vector<std::string> tensor_names = from_gguf ? gg->tensor_names() : st->tensor_names();
  auto tensor_of = [&](const std::string& name) { return from_gguf ? gg->tensor(name) : st->tensor(name); };

  // ---- Plan: every tensor, its name in the store, its kind. ----
  std::vector<Item> dense;
  std::map<std::pair<int64_t, int64_t>, ExpertSources> experts;
  const std::string moe_block(a.moe_block);
  auto expert_name = [&](int64_t layer, int64_t e, std::string_view proj) {
    return str_cat("model.layers.", layer, ".", moe_block, ".experts.", e, ".", proj, ".weight");
  };
  auto put = [&](std::optional<Source>& slot, Source s, int64_t layer, int64_t e, std::string_view proj) {
    MOE_CHECK(!slot.has_value(), src_dir, ": expert ", e, " of layer ", layer, " has two ", proj, " tensors ('",
              slot ? slot->name : "", "' and '", s.name, "')");
    MOE_CHECK(s.shape.size() == 2, s.file, ": tensor '", s.name, "' has shape ", shape_str(s.shape),
              ", expected a matrix");
    slot = std::move(s);
  };
  for (const std::string& name : tensor_names) {
    const TensorKind kind = classify_tensor(name, a);
    const TensorView v = tensor_of(name);
    if (kind != TensorKind::kExpert) {
      std::string out_name = name;
      // transformers 5's fused form keeps the router under `mlp.`; the store uses the Hub name.
      if (kind == TensorKind::kRouter && moe_block != "mlp") {
        const auto l = split_layer(name);
        if (l && l->second == "mlp.gate.weight")
          out_name = str_cat("model.layers.", l->first, ".", moe_block, ".gate.weight");
      }
      dense.push_back(Item{.name = std::move(out_name), .kind = kind, .src = whole(v)});
      continue;
    }
    const auto l = split_layer(name);
    const int64_t layer = l->first;
    const std::string_view rest = l->second.substr(l->second.find(".experts.") + 9);
    if (rest == "gate_up_proj" || rest == "down_proj") {
      const bool gate_up = rest == "gate_up_proj";
      MOE_CHECK(
          v.shape.size() == 3 && (!gate_up || v.shape[1] % 2 == 0), v.file, ": fused expert tensor '", name,
          "' has shape ", shape_str(v.shape),
          gate_up ? ", expected (experts, 2 x intermediate, hidden)" : ", expected (experts, hidden, intermediate)");
      for (int64_t e = 0; e < v.shape[0]; ++e) {
        ExpertSources& x = experts[{layer, e}];
        if (gate_up) {
          const int64_t half = v.shape[1] / 2;
          put(x.gate, slice(v, e, 0, half), layer, e, a.expert_gate);
          put(x.up, slice(v, e, half, half), layer, e, a.expert_up);
        } else {
          put(x.down, slice(v, e, 0, v.shape[1]), layer, e, a.expert_down);
        }
      }
      continue;
    }
    const size_t dot = rest.find('.');
    const int64_t e = std::stoll(std::string(rest.substr(0, dot)));
    const std::string_view proj = rest.substr(dot + 1, rest.size() - dot - 1 - 7);  // strip ".weight"
    ExpertSources& x = experts[{layer, e}];
    if (proj == a.expert_gate)
      put(x.gate, whole(v), layer, e, proj);
    else if (proj == a.expert_up)
      put(x.up, whole(v), layer, e, proj);
    else
      put(x.down, whole(v), layer, e, proj);
  }
  std::sort(dense.begin(), dense.end(),
            [](const Item& x, const Item& y) { return order_key(x.name) < order_key(y.name); });
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::vector<Item>>> expert_items;
  {
    std::map<int64_t, int64_t> per_layer;
    for (auto& [key, x] : experts) {
      const auto [layer, e] = key;
      ++per_layer[layer];
      const char* missing = !x.gate ? "gate" : !x.up ? "up" : !x.down ? "down" : nullptr;
      MOE_CHECK(missing == nullptr, src_dir, ": expert ", e, " of layer ", layer, " has no ", missing, " projection (",
                expert_name(layer, e,
                            !x.gate ? a.expert_gate
                            : !x.up ? a.expert_up
                                    : a.expert_down),
                ")");
      MOE_CHECK(e < config.num_experts, src_dir, ": layer ", layer, " has expert ", e, " but config.json says ",
                config.num_experts, " experts");
      expert_items.push_back(
          {key,
           {Item{.name = expert_name(layer, e, a.expert_gate), .kind = TensorKind::kExpert, .src = std::move(*x.gate)},
            Item{.name = expert_name(layer, e, a.expert_up), .kind = TensorKind::kExpert, .src = std::move(*x.up)},
            Item{.name = expert_name(layer, e, a.expert_down),
                 .kind = TensorKind::kExpert,
                 .src = std::move(*x.down)}}});
    }
    for (const auto& [layer, n] : per_layer)
      MOE_CHECK(n == config.num_experts, src_dir, ": layer ", layer, " has ", n, " experts but config.json says ",
                config.num_experts);
  }

  // ---- Check the recipe against every tensor before writing anything. ----
  std::set<std::string> names;
  uint64_t total = 0;
  auto check = [&](const Item& it) {
    MOE_CHECK(names.insert(it.name).second, src_dir, ": two source tensors map to '", it.name, "'");
    check_choice(it, recipe.choice(it.kind));
    total += it.src.bytes;
  };
  for (const Item& it : dense) check(it);
  for (const auto& [key, items] : expert_items)
    for (const Item& it : items) check(it);

  // ---- Write. ----
  PackedStoreWriter w(out, replace);
  Converter conv(w, options, total, progress);
  for (const Item& it : dense) conv.write(it, recipe.choice(it.kind));
  for (const auto& [key, items] : expert_items) {
    w.begin_expert(key.first, key.second);
    for (const Item& it : items) conv.write(it, recipe.choice(it.kind));
    w.end_expert();
  }
  if (from_gguf) {
    // What the GGUF file says, as the files a Hugging Face directory would hold.
    w.write_file("config.json", config_text);
    if (gg->file().contains("tokenizer.ggml.tokens")) {
      const GgufTokenizerFiles t = gguf_tokenizer_files(read_gguf_vocab(gg->file()), hf_dir);
      w.write_file("tokenizer.json", t.tokenizer_json);
      w.write_file("tokenizer_config.json", t.tokenizer_config_json);
    }
  } else {
    for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
      std::error_code ec;
      if (fs::is_regular_file(hf_dir / f, ec)) w.copy_file(hf_dir / f);
    }
  }
  PackedManifestInfo info;
  info.recipe = recipe.spec();
  info.quantizer = quantizer_json(options);
  info.source = nlohmann::ordered_json::object();
  info.source["dir"] = fs::absolute(hf_dir).lexically_normal().string();
  try {
    info.source["config"] = nlohmann::ordered_json::parse(config_text);
  } catch (const nlohmann::json::exception& e) {
    fail((hf_dir / "config.json").string(), ": invalid JSON: ", e.what());
  }
  if (from_gguf) info.source["format"] = "gguf";
  info.created_by = str_cat("moe-runtime ", MOE_VERSION);

  ConvertStats stats;
  stats.source_bytes = total;
  stats.output_bytes = w.data_bytes();
  stats.tensors = static_cast<int64_t>(w.tensor_count());
  stats.experts = static_cast<int64_t>(w.expert_count());
  stats.relative_error = conv.relative_errors();
  w.commit(info);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace moe
