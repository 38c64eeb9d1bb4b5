#include "launch/engine.h"
#include "launch/offload_options.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "launch/distributed.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/core/error.h"
#include "runtime/io/gguf.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/gguf_source.h"
#include "runtime/quant/quant_cache.h"
#include "runtime/tokenizer/gguf_vocab.h"

namespace moe::cli {

Engine::Engine() = default;
Engine::~Engine() = default;

bool Engine::is_worker() const {
  return dist && !dist->drives();
}

void Engine::serve_forward() {
  MOE_CHECK(is_worker() && dist->driver, "serve_forward: not a prepared worker rank");
  if (pool)
    dist->driver->serve(pool->storage());
  else
    dist->driver->serve(*cache);
}

void Engine::finish_forward() {
  if (dist && dist->driver) dist->driver->finish();
}

void add_parallel_options(CLI::App& cmd, EngineOptions& o) {
  const char* group = "Parallelism (under mpirun; docs/parallel.md)";
  cmd.add_option("--tp", o.parallel.tp, "Tensor-parallel ranks per stage: heads and expert widths split")
      ->group(group)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--pp", o.parallel.pp, "Pipeline stages: layer ranges, hidden states sent stage to stage")
      ->group(group)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--ep", o.parallel.ep,
                 "Expert-parallel ranks per stage: routed experts dealt out (by --placement's profile\n"
                 "when given, else expert e to rank e % ep)")
      ->group(group)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--layers", o.parallel.layers,
                 "Pipeline layer ranges, e.g. 0:12,12:32; or params (the default: balanced by parameter\n"
                 "count, i.e. memory) or decode (balanced by what one decoded token reads, i.e. time)")
      ->group(group);
  cmd.add_option("--comm", o.comm, "Data-plane communicator: mpi, nccl, or auto (nccl on a GPU)")
      ->group(group)
      ->capture_default_str();
}

void add_engine_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option("--model,-m", o.model_dir,
                 "Model: a directory (config.json, model.safetensors or a sharded index, tokenizer.json), a packed "
                 "store, or a GGUF file")
      ->required()
      ->check(model_path_check());
  cmd.add_option("--device", o.device, "Compute device: cpu, cuda (GPU 0) or cuda:N")->capture_default_str();
  cmd.add_option("--threads,-t", o.threads, "CPU threads (default: all cores, or OMP_NUM_THREADS)");
  cmd.add_option("--prefill-chunk", o.prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  cmd.add_option("--quant,-q", o.quant,
                 "Quantize a Hugging Face model on load with this recipe (e.g. q4, mixed-4-2,\n"
                 "attn=q4,experts=q2g16); converted once into the cache ($MOE_CACHE_DIR or ~/.cache/moe)");
  cmd.add_option("--quantizer", o.quantizer, "Quantizer for --quant: hqq or rtn")->capture_default_str();
  cmd.add_flag("!--no-verify", o.verify, "Skip the packed store's checksum check at load");
  add_offload_options(cmd, o);
  add_parallel_options(cmd, o);
}

QuantizeOptions quantize_options(const std::string& quantizer) {
  QuantizeOptions q;
  if (quantizer == "hqq")
    q.quantizer = Quantizer::kHqq;
  else if (quantizer == "rtn")
    q.quantizer = Quantizer::kRtn;
  else
    fail("--quantizer must be hqq or rtn, got '", quantizer, "'");
  return q;
}

void add_sampling_options(CLI::App& cmd, SamplingParams& p) {
  cmd.add_option("--temperature", p.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd.add_option("--top-k", p.top_k, "Keep only the k most likely tokens; 0 = off")->capture_default_str();
  cmd.add_option("--top-p", p.top_p, "Nucleus sampling: keep the smallest set reaching this probability; 1 = off")
      ->capture_default_str();
  cmd.add_option("--seed", p.seed, "Random seed for sampling")->capture_default_str();
}

std::vector<int32_t> Engine::stop_ids() const {
  std::vector<int32_t> ids = config().eos_token_ids;
  if (tokenizer)
    if (const std::optional<int32_t> eos = tokenizer->eos_id())
      if (std::find(ids.begin(), ids.end(), *eos) == ids.end()) ids.push_back(*eos);
  return ids;
}

const Tokenizer& Engine::require_tokenizer(const char* why) const {
  if (!tokenizer)
    fail(model_dir_for_messages, ": ", why,
         is_gguf_model(model_dir_for_messages)
             ? " needs a tokenizer, and this GGUF file has no tokenizer.ggml.* metadata"
             : " needs tokenizer.json, which this model directory does not have");
  return *tokenizer;
}

void Engine::prepare(int64_t context) {
  const auto t0 = std::chrono::steady_clock::now();
  if (dist) dist->control->broadcast(&context, sizeof context, 0);
  transformer.reset();
  cache.reset();
  transformer = std::make_unique<Transformer>(config(), model->weights(), model->layout(), *backend,
                                              std::min<int64_t>(prefill_chunk, context));
  cache = std::make_unique<KvCache>(*backend, config(), model->layout(), context);
  prepare_offload(*this);
  if (dist) prepare_distributed(*this);
  load_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Engine::prepare_batch(int64_t max_seqs, int64_t max_step_tokens, int64_t kv_blocks, int64_t block_size,
                           int64_t context) {
  const auto t0 = std::chrono::steady_clock::now();
  if (dist) {
    // Rank 0's sizes everywhere; the fewest blocks any rank's --kv-mem holds (rank 0's scheduler
    // hands out block ids that every rank's pool must have).
    int64_t sizes[4] = {max_seqs, max_step_tokens, block_size, context};
    dist->control->broadcast(sizes, sizeof sizes, 0);
    max_seqs = sizes[0], max_step_tokens = sizes[1], block_size = sizes[2], context = sizes[3];
    std::vector<int64_t> blocks(static_cast<size_t>(dist->size()));
    dist->control->all_gather(&kv_blocks, sizeof kv_blocks, blocks.data());
    kv_blocks = *std::min_element(blocks.begin(), blocks.end());
  }
  transformer.reset();
  pool.reset();
  transformer =
      std::make_unique<Transformer>(config(), model->weights(), model->layout(), *backend, max_step_tokens, max_seqs);
  pool = std::make_unique<KvPool>(*backend, config(), model->layout(), kv_blocks, block_size, context);
  prepare_offload(*this);
  if (dist) prepare_distributed(*this);
  load_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t Engine::kv_bytes() const {
  return (cache ? cache->bytes() : 0) + (pool ? pool->bytes() : 0);
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      fail("--tokens: '", item, "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) fail("--tokens: no token ids given");
  return ids;
}

std::unique_ptr<Engine> load_engine(const EngineOptions& o) {
  if (distributed_requested(o)) return load_distributed_engine(o);
  check_offload_options(o);
  MOE_CHECK(o.prefill_chunk > 0, "--prefill-chunk must be positive");
  const auto t0 = std::chrono::steady_clock::now();
  auto e = std::make_unique<Engine>();
  e->model_dir_for_messages = o.model_dir;
  e->backend = make_backend(o.device, o.threads);
  e->prefill_chunk = o.prefill_chunk;
  e->options = o;
  std::filesystem::path dir = o.model_dir;
  if (!o.quant.empty()) {
    if (PackedStore::is_packed(dir))
      fail(o.model_dir, ": --quant applies to Hugging Face directories; this one is already a packed store");
    if (is_gguf_model(dir))
      fail(o.model_dir,
           ": --quant applies to Hugging Face directories; a GGUF file runs in its own types (convert it with moe "
           "convert --model FILE.gguf --quant keep --out DIR to keep them in a packed store)");
    const QuantRecipe recipe = QuantRecipe::parse(o.quant);
    bool converted = false;
    int last_percent = -1;
    dir = cached_packed_model(
        dir, recipe, quantize_options(o.quantizer),
        [&](const ConvertProgress& p) {
          const int percent = p.bytes_total ? static_cast<int>(100 * p.bytes_done / p.bytes_total) : 100;
          if (percent / 10 != last_percent / 10 || percent == 100) {
            std::fprintf(stderr, "\rquantizing %s with %s: %3d%%", o.model_dir.c_str(), recipe.spec().c_str(), percent);
            std::fflush(stderr);
            last_percent = percent;
          }
        },
        &converted);
    if (converted) std::fprintf(stderr, "\nquantized into %s\n", dir.string().c_str());
  }
  e->loaded_from = dir.string();
  // With offloading on, the routed experts stay in the file: the tiers read them into their
  // slots within the budget (the backend never copies them).
  e->model = Model::load(dir, *e->backend, nullptr, o.verify,
                         offload_requested(o) ? ExpertBinding::kMapped : ExpertBinding::kResident);
  const ModelConfig& c = e->model->config();
  print_config_warnings(c);
  e->tokenizer = load_model_tokenizer(dir);
  if (e->tokenizer)
    MOE_CHECK(e->tokenizer->vocab_size() <= c.vocab_size, o.model_dir, ": the tokenizer has ",
              e->tokenizer->vocab_size(), " tokens but the model's vocab_size is ", c.vocab_size);
  e->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return e;
}

void print_config_warnings(const ModelConfig& c) {
  for (const std::string& w : c.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

CLI::Validator model_path_check() {
  return CLI::Validator(
      [](std::string& p) -> std::string {
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) return {};
        if (std::filesystem::is_regular_file(p, ec))
          return is_gguf_model(p) ? std::string() : p + ": neither a model directory nor a GGUF file (no GGUF magic)";
        return "Model path does not exist: " + p;
      },
      "DIR|FILE.gguf");
}

std::optional<Tokenizer> load_model_tokenizer(const std::filesystem::path& model) {
  if (is_gguf_model(model)) {
    const GgufFile f = GgufFile::open(model);
    if (!f.contains("tokenizer.ggml.tokens")) return std::nullopt;
    return tokenizer_from_gguf_vocab(read_gguf_vocab(f), model);
  }
  if (std::filesystem::exists(model / "tokenizer.json")) return Tokenizer::load(model);
  return std::nullopt;
}

void print_stats(std::FILE* out, const Engine& e, const GenerationResult& r, const SamplingParams& s,
                 int64_t reused_tokens) {
  const ModelWeights& w = e.model->weights();
  std::fprintf(out,
               "--- moe stats ---\n"
               "model     %s\n"
               "weights   %.1f MB (%s, %s experts %.1f MB), KV cache %.1f MB for %lld positions\n"
               "backend   %s, sampling %s\n"
               "load      %.3f s\n",
               e.config().summary().c_str(), static_cast<double>(w.bytes) / 1e6,
               e.model->packed() ? ("packed " + e.model->packed()->recipe()).c_str()
               : e.model->gguf() ? "gguf"
                                 : "safetensors",
               w.expert_form == ExpertForm::kFused ? "fused" : "per-expert", static_cast<double>(w.expert_bytes) / 1e6,
               static_cast<double>(e.cache->bytes()) / 1e6, static_cast<long long>(e.cache->capacity()),
               e.backend->name().c_str(), s.describe().c_str(), e.load_seconds);
  std::fprintf(out, "prompt    %lld tokens in %.3f s = %.1f tokens/s (time to first token %.3f s)",
               static_cast<long long>(r.prompt_tokens), r.prefill_seconds, r.prompt_tokens_per_second(),
               r.first_token_seconds);
  if (reused_tokens > 0) std::fprintf(out, "; %lld more reused from the cache", static_cast<long long>(reused_tokens));
  std::fprintf(out,
               "\n"
               "decode    %lld tokens in %.3f s = %.2f tokens/s\n"
               "stop      %s after %zu new tokens\n",
               static_cast<long long>(r.decode_steps), r.decode_seconds, r.decode_tokens_per_second(),
               r.stop_reason.c_str(), r.tokens.size());
  print_offload_stats(out, e);
  const auto* cpu = dynamic_cast<const CpuBackend*>(e.backend.get());
  if (cpu != nullptr && cpu->realigned_weights() > 0)
    std::fprintf(out, "note      %lld tensors were misaligned in the file and copied to aligned memory\n",
                 static_cast<long long>(cpu->realigned_weights()));
}

}  // namespace moe::cli
