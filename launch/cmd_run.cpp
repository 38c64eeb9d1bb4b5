// moe run: generate from a prompt with a model directory, streaming tokens, then a stats block.
#include <chrono>
#include <cstdio>
#include <sstream>

#include "launch/commands.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/engine/generator.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/transformer.h"
#include "runtime/io/npy.h"
#include "runtime/model/model.h"

namespace moe::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string tokens;
  int64_t max_new_tokens = 32;
  SamplingParams sampling;
  bool ignore_eos = false;
  std::string dump_logits;
  int threads = 0;
  int64_t prefill_chunk = 256;
  std::string device = "cpu";
};

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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const RunOptions& o) {
  if (o.device != "cpu")
    fail("--device ", o.device, ": only the cpu backend exists in this build (the CUDA backend is not written yet)");
  if (!o.prompt.empty())
    fail("--prompt needs the model's tokenizer.json, which this build cannot read yet; pass token ids with --tokens");
  const std::vector<int32_t> prompt = parse_token_list(o.tokens);
  o.sampling.validate();
  MOE_CHECK(o.prefill_chunk > 0, "--prefill-chunk must be positive");

  const auto t_load = std::chrono::steady_clock::now();
  CpuBackend backend(o.threads);
  std::unique_ptr<Model> model = Model::load(o.model, backend);
  const ModelConfig& c = model->config();
  const int64_t capacity = static_cast<int64_t>(prompt.size()) + o.max_new_tokens;
  Transformer transformer(c, model->weights(), model->layout(), backend, std::min<int64_t>(o.prefill_chunk, capacity));
  KvCache cache(backend, c, model->layout(), capacity);
  const double load_seconds = seconds_since(t_load);

  GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = o.sampling;
  if (!o.ignore_eos) g.stop_ids = c.eos_token_ids;
  g.keep_logits = !o.dump_logits.empty();
  const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, g, [](int32_t id) {
    std::printf("%d ", id);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);

  if (!o.dump_logits.empty())
    write_npy(o.dump_logits, {static_cast<int64_t>(r.tokens.size()), c.vocab_size}, r.logits.data());

  const ModelWeights& w = model->weights();
  std::fprintf(stderr,
               "--- moe run ---\n"
               "model     %s\n"
               "weights   %.1f MB (%s experts), KV cache %.1f MB\n"
               "backend   %s, sampling %s\n"
               "load      %.3f s\n"
               "prompt    %lld tokens in %.3f s = %.1f tokens/s (time to first token %.3f s)\n"
               "decode    %lld tokens in %.3f s = %.2f tokens/s\n"
               "stop      %s after %zu new tokens\n",
               c.summary().c_str(), static_cast<double>(w.bytes) / 1e6,
               w.expert_form == ExpertForm::kFused ? "fused" : "per-expert", static_cast<double>(cache.bytes()) / 1e6,
               backend.name().c_str(), o.sampling.describe().c_str(), load_seconds,
               static_cast<long long>(r.prompt_tokens), r.prefill_seconds, r.prompt_tokens_per_second(),
               r.first_token_seconds, static_cast<long long>(r.decode_steps), r.decode_seconds,
               r.decode_tokens_per_second(), r.stop_reason.c_str(), r.tokens.size());
  if (backend.realigned_weights() > 0)
    std::fprintf(stderr, "note      %lld tensors were misaligned in the file and copied to aligned memory\n",
                 static_cast<long long>(backend.realigned_weights()));
  if (!o.dump_logits.empty())
    std::fprintf(stderr, "logits    %zu x %lld float32 written to %s\n", r.tokens.size(),
                 static_cast<long long>(c.vocab_size), o.dump_logits.c_str());
  return 0;
}

}  // namespace

Action add_run_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Generate tokens from a prompt with a Hugging Face MoE model directory (config.json + safetensors).\n"
      "Streams generated token ids to stdout; a stats block (load time, prompt and decode tokens/s) goes to stderr.");
  auto o = std::make_shared<RunOptions>();
  cmd->add_option("--model,-m", o->model, "Model directory: config.json and model.safetensors (or a sharded index)")
      ->required()
      ->check(CLI::ExistingDirectory);
  auto* prompt = cmd->add_option("--prompt,-p", o->prompt, "Prompt text (needs tokenizer.json support: not yet)");
  auto* tokens = cmd->add_option("--tokens", o->tokens, "Prompt as comma-separated token ids, e.g. 1,415,2936");
  prompt->excludes(tokens);
  cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "Stop after this many new tokens")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep only the k most likely tokens; 0 = off")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p,
                  "Nucleus sampling: keep the smallest set reaching this probability; 1 = off")
      ->capture_default_str();
  cmd->add_option("--seed", o->sampling.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_option("--dump-logits", o->dump_logits,
                  "Write every step's logits to FILE as a float32 .npy array (steps x vocab); row i is the\n"
                  "distribution the i-th new token was drawn from");
  cmd->add_option("--threads,-t", o->threads, "CPU threads (default: all cores, or OMP_NUM_THREADS)");
  cmd->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  cmd->add_option("--device", o->device, "Compute device: cpu")->capture_default_str();
  return [o, prompt, tokens] {
    if (prompt->count() == 0 && tokens->count() == 0) fail("moe run: give a prompt with --tokens (or --prompt)");
    return run(*o);
  };
}

}  // namespace moe::cli
