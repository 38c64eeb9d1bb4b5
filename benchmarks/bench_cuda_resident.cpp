// moe_bench_cuda_resident: decode and prefill throughput of a random-weight MoE model held
// entirely in GPU memory (default: Mixtral-8x7B's shape, every matrix q4g64, norms and router
// bf16: ~26 GB), beside the HBM bound of batch-1 decode (device read bandwidth measured in the
// same run / bytes read per decoded token). Prints a table and writes one JSON record naming the
// device. The weights are generated in host memory tensor by tensor and loaded through
// Backend::load_weight, so no checkpoint is written to disk (Mixtral-8x7B in bf16 would not fit
// on the machine's disk).
//
// Random routers route near-uniformly: batch-1 decode still reads top_k experts per layer, so
// the decode bound does not depend on it, but every prefill chunk touches every expert.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "benchmarks/bench_record.h"
#include "benchmarks/device_bandwidth.h"
#include "benchmarks/model_cost.h"
#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/core/error.h"
#include "runtime/engine/generator.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/engine/transformer.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"

#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif
#ifndef MOE_CONFIGURE_COMMIT
#define MOE_CONFIGURE_COMMIT ""
#endif

namespace moe::bench {
namespace {

using json = nlohmann::ordered_json;

struct Options {
  std::string device = "cuda";
  int64_t layers = 32, hidden = 4096, experts = 8, top_k = 2, expert_width = 14336;
  int64_t heads = 32, kv_heads = 8, vocab = 32000;
  std::string format = "q4g64";  // every matrix; "bf16" keeps them unquantized
  int64_t prompt_tokens = 512, decode_tokens = 64, prefill_chunk = 512;
  int reps = 3, warmup = 1;
  uint64_t seed = 0;
  std::string out;
  bool no_record = false;
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Host bytes of one tensor, generated in parallel, handed to the backend.
class WeightMaker {
 public:
  WeightMaker(Backend& b, uint64_t seed) : b_(b), seed_(seed) {}

  // A matrix (rows, cols) of weights with standard deviation `std`, quantized or bf16.
  Tensor matrix(const std::string& name, int64_t rows, int64_t cols, std::optional<QuantFormat> q, float std) {
    TensorView v = view(name, {rows, cols});
    if (q) {
      v.quant = q;
      v.dtype = DType::kU8;
      v.nbytes = quant_row_bytes(*q, cols) * static_cast<uint64_t>(rows);
      fill_quant(v.nbytes, *q, std);
    } else {
      v.dtype = DType::kBF16;
      v.nbytes = static_cast<uint64_t>(rows * cols) * 2;
      fill_bf16(v.nbytes / 2, std, 0.0f);
    }
    v.data = buf_.data();
    bytes_ += v.nbytes;
    return b_.load_weight(v);
  }
  // A norm weight (n), bf16 values around 1.
  Tensor norm(const std::string& name, int64_t n) {
    TensorView v = view(name, {n});
    v.dtype = DType::kBF16;
    v.nbytes = static_cast<uint64_t>(n) * 2;
    fill_bf16(static_cast<size_t>(n), 0.05f, 1.0f);
    v.data = buf_.data();
    bytes_ += v.nbytes;
    return b_.load_weight(v);
  }
  uint64_t bytes() const { return bytes_; }

 private:
  TensorView view(const std::string& name, std::vector<int64_t> shape) {
    TensorView v;
    v.name = name;
    v.file = "(random weights in memory)";
    v.shape = std::move(shape);
    return v;
  }
  void fill_quant(uint64_t bytes, QuantFormat q, float std) {
    buf_.resize(bytes);
    const int levels = 1 << quant_bits(q.type);
    // Uniform codes have a standard deviation of levels / sqrt(12) code units.
    const uint16_t scale = f32_to_f16(std * std::sqrt(12.0f) / static_cast<float>(levels));
    const uint16_t zero = f32_to_f16(static_cast<float>(levels - 1) / 2.0f);
    const size_t block = quant_block_bytes(q);
    const size_t blocks = bytes / block;
    const uint64_t base = splitmix(seed_);
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* p = buf_.data() + b * block;
      std::memcpy(p, &scale, 2);
      std::memcpy(p + 2, &zero, 2);
      uint64_t s = base ^ (b * 0x632be59bd9b4e019ull);
      for (size_t i = 4; i < block; i += 8) {
        const uint64_t r = splitmix(s);
        std::memcpy(p + i, &r, std::min<size_t>(8, block - i));
      }
    }
  }
  void fill_bf16(size_t n, float std, float mean) {
    buf_.resize(n * 2);
    const uint64_t base = splitmix(seed_);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) {
      uint64_t s = base ^ (i * 0x632be59bd9b4e019ull);
      // Uniform in [-sqrt(3), sqrt(3)) std: standard deviation `std`.
      const double u = static_cast<double>(splitmix(s) >> 11) * 0x1p-53 * 2.0 - 1.0;
      const uint16_t h = f32_to_bf16(mean + static_cast<float>(u * 1.7320508 * std));
      std::memcpy(buf_.data() + 2 * i, &h, 2);
    }
  }

  Backend& b_;
  uint64_t seed_;
  std::vector<uint8_t> buf_;
  uint64_t bytes_ = 0;
};

std::string config_json(const Options& o) {
  json j = {{"architectures", {"MixtralForCausalLM"}},
            {"model_type", "mixtral"},
            {"vocab_size", o.vocab},
            {"hidden_size", o.hidden},
            {"intermediate_size", o.expert_width},
            {"num_hidden_layers", o.layers},
            {"num_attention_heads", o.heads},
            {"num_key_value_heads", o.kv_heads},
            {"num_local_experts", o.experts},
            {"num_experts_per_tok", o.top_k},
            {"hidden_act", "silu"},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 1e6},
            {"max_position_embeddings", 32768},
            {"tie_word_embeddings", false},
            {"bos_token_id", 1},
            {"eos_token_id", 2}};
  return j.dump();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Options& o) {
  std::optional<QuantFormat> q;
  if (o.format != "bf16") {
    q = parse_quant_format(o.format);
    MOE_CHECK(q.has_value(), "--format ", o.format, ": expected bf16 or a quantized format such as q4g64");
  }
  const ModelConfig c = parse_model_config(config_json(o), "/random-weights/config.json");
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const std::unique_ptr<Backend> backend = make_backend(o.device, 0);
  std::fprintf(stderr, "backend %s\nmeasuring device bandwidth ...\n", backend->name().c_str());
  BandwidthResult bw = measure_bandwidth_for(o.device, size_t{1} << 30, 0, 5);

  // ---- weights, generated tensor by tensor ----
  const auto t_load = std::chrono::steady_clock::now();
  WeightMaker make(*backend, o.seed);
  ModelWeights w;
  const float wstd = 0.02f;
  w.embed = make.matrix("embed", c.vocab_size, c.hidden_size, q, 1.0f);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    std::fprintf(stderr, "\rgenerating layer %lld/%lld", static_cast<long long>(l + 1),
                 static_cast<long long>(c.num_layers));
    LayerWeights lw;
    lw.index = l;
    lw.attn_norm = make.norm("attn_norm", c.hidden_size);
    lw.ffn_norm = make.norm("ffn_norm", c.hidden_size);
    lw.attn.q = make.matrix("q", c.q_width(), c.hidden_size, q, wstd);
    lw.attn.k = make.matrix("k", c.kv_width(), c.hidden_size, q, wstd);
    lw.attn.v = make.matrix("v", c.kv_width(), c.hidden_size, q, wstd);
    lw.attn.o = make.matrix("o", c.hidden_size, c.q_width(), q, wstd);
    lw.is_moe = true;
    lw.moe.router = make.matrix("router", c.num_experts, c.hidden_size, std::nullopt, wstd);
    const uint64_t before = make.bytes();
    for (int64_t e = 0; e < c.num_experts; ++e)
      lw.moe.experts.push_back({make.matrix("gate", c.expert_intermediate, c.hidden_size, q, wstd),
                                make.matrix("up", c.expert_intermediate, c.hidden_size, q, wstd),
                                make.matrix("down", c.hidden_size, c.expert_intermediate, q, wstd)});
    w.expert_bytes += make.bytes() - before;
    w.layers.push_back(std::move(lw));
  }
  std::fprintf(stderr, "\n");
  w.final_norm = make.norm("final_norm", c.hidden_size);
  w.lm_head = make.matrix("lm_head", c.vocab_size, c.hidden_size, q, wstd);
  w.bytes = make.bytes();
  backend->synchronize();
  const ParallelLayout layout = ParallelLayout::single(c.num_layers);
  const int64_t capacity = o.prompt_tokens + o.decode_tokens + 1;
  Transformer transformer(c, w, layout, *backend, std::min(o.prefill_chunk, capacity));
  KvCache cache(*backend, c, layout, capacity);
  const double load_seconds = seconds_since(t_load);

  std::mt19937_64 rng(o.seed + 1);
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size));
  GenerationOptions g;
  g.max_new_tokens = o.decode_tokens + 1;
  std::vector<double> prompt_tps, decode_tps, ttft;
  for (int i = 0; i < o.warmup + o.reps; ++i) {
    const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, g);
    std::fprintf(stderr, "%s %d: prompt %.1f tok/s, ttft %.3f s, decode %.2f tok/s\n", i < o.warmup ? "warm-up" : "rep",
                 i < o.warmup ? i + 1 : i - o.warmup + 1, r.prompt_tokens_per_second(), r.first_token_seconds,
                 r.decode_tokens_per_second());
    if (i < o.warmup) continue;
    prompt_tps.push_back(r.prompt_tokens_per_second());
    decode_tps.push_back(r.decode_tokens_per_second());
    ttft.push_back(r.first_token_seconds);
  }
  const BandwidthResult bw_after = measure_bandwidth_for(o.device, size_t{1} << 30, 0, 5);
  bw.read_gbs.insert(bw.read_gbs.end(), bw_after.read_gbs.begin(), bw_after.read_gbs.end());
  bw.copy_gbs.insert(bw.copy_gbs.end(), bw_after.copy_gbs.begin(), bw_after.copy_gbs.end());

  const double mean_context = static_cast<double>(o.prompt_tokens) + (static_cast<double>(o.decode_tokens) + 1) / 2;
  const uint64_t weight_bytes = w.decode_bytes_per_token(c.experts_per_token);
  const uint64_t kv_bytes = kv_bytes_read(c, mean_context);
  const double bytes_per_token = static_cast<double>(weight_bytes + kv_bytes);
  const double read_gbs = bw.best_read_gbs(), copy_gbs = bw.best_copy_gbs();
  const double bound_read = read_gbs * 1e9 / bytes_per_token;
  const double bound_copy = copy_gbs * 1e9 / bytes_per_token;
  const double decode = median(decode_tps), prefill = median(prompt_tps);

  std::printf("moe_bench_cuda_resident   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "",
              utc_now_iso8601().c_str());
  std::printf("device    %s\n", backend->name().c_str());
  std::printf("model     %s, %s, random weights, %.2f GB resident (experts %.2f GB)\n", c.summary().c_str(),
              o.format.c_str(), static_cast<double>(w.bytes) / 1e9, static_cast<double>(w.expert_bytes) / 1e9);
  std::printf("bytes/tok %.1f MB weights + %.1f MB KV (f32, mean context %.1f)\n",
              static_cast<double>(weight_bytes) / 1e6, static_cast<double>(kv_bytes) / 1e6, mean_context);
  std::printf("bandwidth read %.0f GB/s, copy %.0f GB/s (read + write), best of %zu\n", read_gbs, copy_gbs,
              bw.read_gbs.size());
  std::printf("decode    %.2f tok/s | HBM bound (read bw) %.1f tok/s -> efficiency %.1f%% | (copy bw) %.1f tok/s\n",
              decode, bound_read, 100 * decode / bound_read, bound_copy);
  std::printf("prefill   %.1f tok/s (%lld-token prompt, chunk %lld), ttft %.3f s\n", prefill,
              static_cast<long long>(o.prompt_tokens), static_cast<long long>(std::min(o.prefill_chunk, capacity)),
              median(ttft));
  std::printf("load      %.1f s (generate + upload + repack)\n", load_seconds);
  if (o.no_record) return 0;

  std::string gpu = backend->name();
  std::string tag;
  for (char ch : gpu.substr(gpu.find('(') + 1, gpu.find(',') - gpu.find('(') - 1))
    tag += std::isalnum(static_cast<unsigned char>(ch)) ? static_cast<char>(std::tolower(ch)) : '-';
  const std::filesystem::path out = !o.out.empty() ? std::filesystem::path(o.out)
                                                   : std::filesystem::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                                         str_cat("cuda-mixtral-l", o.layers, "-h", o.hidden, "-e",
                                                                 o.experts, "-", o.format, "-", tag, ".json");
  json rec = {{"benchmark", "moe_bench_cuda_resident"},
              {"schema_version", 1},
              {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
              {"date", utc_now_iso8601()},
              {"backend", backend->name()},
              {"machine", to_json(machine_info())},
              {"model",
               {{"summary", c.summary()},
                {"format", o.format},
                {"weights_bytes", w.bytes},
                {"expert_bytes", w.expert_bytes},
                {"random_weights_seed", o.seed},
                {"router", "bf16"},
                {"norms", "bf16"}}},
              {"workload",
               {{"prompt_tokens", o.prompt_tokens},
                {"decode_steps", o.decode_tokens},
                {"prefill_chunk", std::min(o.prefill_chunk, capacity)},
                {"batch", 1},
                {"reps", o.reps},
                {"warmup", o.warmup}}},
              {"bytes_per_token", {{"weights", weight_bytes}, {"kv_cache", kv_bytes}, {"mean_context", mean_context}}},
              {"bandwidth", {{"read_gbs", read_gbs}, {"copy_gbs", copy_gbs}, {"read_gbs_reps", bw.read_gbs}}},
              {"figures",
               {{"load_seconds", load_seconds},
                {"decode_tokens_per_second", {{"reps", decode_tps}, {"median", decode}}},
                {"prompt_tokens_per_second", {{"reps", prompt_tps}, {"median", prefill}}},
                {"ttft_seconds", {{"reps", ttft}, {"median", median(ttft)}}}}},
              {"bound",
               {{"decode_tokens_per_second_from_read_bw", bound_read},
                {"decode_tokens_per_second_from_copy_bw", bound_copy},
                {"formula", "device bandwidth / bytes_per_token (weights + KV)"}}},
              {"efficiency", {{"decode_vs_read_bound", decode / bound_read}}},
              {"notes", json::array({"Random routers route near-uniformly: every prefill chunk touches every expert.",
                                     "Weights generated in memory; nothing read from disk."})}};
  write_record(out, rec);
  std::printf("record    %s\n", out.string().c_str());
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  moe::bench::Options o;
  CLI::App app{
      "moe_bench_cuda_resident: decode and prefill tokens/s of a random-weight MoE model resident on one GPU\n"
      "(default Mixtral-8x7B's shape, q4g64) beside the HBM bound of batch-1 decode"};
  app.add_option("--device", o.device, "cuda or cuda:N")->capture_default_str();
  app.add_option("--layers", o.layers, "Decoder layers")->capture_default_str();
  app.add_option("--hidden", o.hidden, "Hidden size")->capture_default_str();
  app.add_option("--experts", o.experts, "Experts per layer")->capture_default_str();
  app.add_option("--top-k", o.top_k, "Experts per token")->capture_default_str();
  app.add_option("--expert-width", o.expert_width, "Expert intermediate size")->capture_default_str();
  app.add_option("--heads", o.heads, "Attention heads")->capture_default_str();
  app.add_option("--kv-heads", o.kv_heads, "KV heads")->capture_default_str();
  app.add_option("--vocab", o.vocab, "Vocabulary")->capture_default_str();
  app.add_option("--format", o.format, "Every matrix's storage: q8gG, q4gG, q3gG, q2gG or bf16")->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length")->capture_default_str();
  app.add_option("--decode-tokens", o.decode_tokens, "Decode steps")->capture_default_str();
  app.add_option("--prefill-chunk", o.prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  app.add_option("--reps", o.reps, "Timed repetitions")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed runs first")->capture_default_str();
  app.add_option("--seed", o.seed, "Weights and prompt seed")->capture_default_str();
  app.add_option("--out", o.out, "JSON record path");
  app.add_flag("--no-record", o.no_record, "Write no JSON record");
  CLI11_PARSE(app, argc, argv);
  try {
    return moe::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_cuda_resident: error: %s\n", e.what());
    return 1;
  }
}
