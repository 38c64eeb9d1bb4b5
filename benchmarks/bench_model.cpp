#include "benchmarks/bench_model.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/core/error.h"
#include "runtime/model/config.h"

namespace moe::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kStampFile = "moe-bench-model.json";  // marks a directory this program wrote

json spec_json(const SyntheticModelSpec& s) {
  json j = {{"architecture", s.architecture},
            {"vocab_size", s.vocab_size},
            {"hidden_size", s.hidden_size},
            {"num_layers", s.num_layers},
            {"num_heads", s.num_heads},
            {"num_kv_heads", s.num_kv_heads},
            {"head_dim", s.head_dim},
            {"num_experts", s.num_experts},
            {"experts_per_token", s.experts_per_token},
            {"expert_intermediate", s.expert_intermediate},
            {"dense_intermediate", s.dense_intermediate},
            {"shared_intermediate", s.shared_intermediate},
            {"decoder_sparse_step", s.decoder_sparse_step},
            {"qkv_bias", s.qkv_bias},
            {"norm_topk_prob", s.norm_topk_prob},
            {"dtype", std::string(dtype_name(s.dtype))},
            {"seed", s.seed},
            {"max_position_embeddings", s.max_position_embeddings}};
  // Only when set: the stamps of models written before the key existed stay valid.
  if (s.router_correlation != 0) j["router_correlation"] = s.router_correlation;
  return j;
}

json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return nullptr;
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return nullptr;
  }
}

// True when `dir` holds the model `s` describes, written completely by this program: its
// config.json parses to the same shape and the stamp records the same spec and file size.
bool model_matches(const fs::path& dir, const SyntheticModelSpec& s) {
  std::error_code ec;
  const auto size = fs::file_size(dir / "model.safetensors", ec);
  if (ec) return false;
  const json stamp = read_json_file(dir / kStampFile);
  if (!stamp.is_object() || stamp.value("spec", json()) != spec_json(s) ||
      stamp.value("safetensors_bytes", uint64_t{0}) != size)
    return false;
  try {
    const ModelConfig c = load_model_config(dir);
    const json raw = read_json_file(dir / "config.json");
    const std::string want_dtype = s.dtype == DType::kBF16  ? "bfloat16"
                                   : s.dtype == DType::kF16 ? "float16"
                                                            : "float32";
    return c.arch->hf_name == s.architecture && c.vocab_size == s.vocab_size && c.hidden_size == s.hidden_size &&
           c.num_layers == s.num_layers && c.num_heads == s.num_heads && c.num_kv_heads == s.num_kv_heads &&
           c.num_experts == s.num_experts && c.experts_per_token == s.experts_per_token &&
           c.expert_intermediate == s.expert_intermediate && raw.value("torch_dtype", "") == want_dtype;
  } catch (const Error&) {
    return false;
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

SyntheticModelSpec mixtral_moderate_spec() {
  SyntheticModelSpec s = tiny_model_spec("mixtral");
  s.vocab_size = 32000;
  s.hidden_size = 1024;
  s.num_layers = 8;
  s.num_heads = 16;
  s.num_kv_heads = 4;
  s.head_dim = 0;
  s.num_experts = 8;
  s.experts_per_token = 2;
  s.expert_intermediate = 3584;
  s.shared_intermediate = 3584;
  s.dense_intermediate = 4 * 3584;
  s.decoder_sparse_step = 1;
  s.dtype = DType::kBF16;
  s.seed = 0;
  s.max_position_embeddings = 4096;
  return s;
}

PreparedModel prepare_model(const fs::path& dir, const SyntheticModelSpec& s, bool regenerate) {
  PreparedModel p;
  if (!regenerate && model_matches(dir, s)) return p;
  // Never overwrite a model directory this program did not write.
  if (!regenerate && fs::exists(dir / "config.json") && !fs::exists(dir / kStampFile))
    fail(dir.string(),
         " holds a model this benchmark did not write; pass another --model-dir (or --regenerate to "
         "overwrite it)");
  std::fprintf(stderr, "writing the random-weight model to %s ...\n", dir.string().c_str());
  fs::remove(dir / kStampFile);
  const auto t0 = std::chrono::steady_clock::now();
  p.params_written = write_synthetic_model(s, dir);
  p.write_seconds = seconds_since(t0);
  p.written = true;
  const json stamp = {{"spec", spec_json(s)}, {"safetensors_bytes", fs::file_size(dir / "model.safetensors")}};
  std::ofstream(dir / kStampFile) << stamp.dump(2) << "\n";
  return p;
}

}  // namespace moe::bench
