// moe run: generate from a prompt with a model directory, streaming the output, then a stats
// block. Text in and out when the directory has tokenizer.json; token ids always work.
#include <cstdio>

#include "launch/commands.h"
#include "launch/distributed.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/io/npy.h"

namespace moe::cli {
namespace {

struct RunOptions {
  EngineOptions engine;
  std::string prompt;
  std::string tokens;
  int64_t max_new_tokens = 32;
  SamplingParams sampling;
  bool ignore_eos = false;
  bool print_ids = false;
  std::string dump_logits;
};

int generate_and_print(const RunOptions& o, Engine& engine, const std::vector<int32_t>& prompt);

int run(const RunOptions& o, bool have_prompt_text) {
  o.sampling.validate();
  std::vector<int32_t> prompt;
  if (!have_prompt_text) prompt = parse_token_list(o.tokens);  // before loading: fail fast
  std::unique_ptr<Engine> e = load_engine(o.engine);
  if (have_prompt_text) {
    prompt = e->require_tokenizer("--prompt").encode(o.prompt, /*add_special_tokens=*/true);
    MOE_CHECK(!prompt.empty(), "--prompt: the text encodes to no tokens");
  }
  // The KV cache holds exactly this run.
  e->prepare(static_cast<int64_t>(prompt.size()) + std::max<int64_t>(o.max_new_tokens, 1));
  if (e->dist) return run_or_abort(*e, [&] { return generate_and_print(o, *e, prompt); });
  return generate_and_print(o, *e, prompt);
}

// Rank 0 (or the only process) generates and prints; the other ranks of a distributed engine
// serve its forward calls and report their part.
int generate_and_print(const RunOptions& o, Engine& engine, const std::vector<int32_t>& prompt) {
  Engine* e = &engine;
  if (e->is_worker()) {
    e->serve_forward();
    print_rank_stats(stderr, *e);
    return 0;
  }
  const bool as_text = e->tokenizer.has_value() && !o.print_ids;

  GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = o.sampling;
  if (!o.ignore_eos) g.stop_ids = e->stop_ids();
  g.keep_logits = !o.dump_logits.empty();
  std::optional<StreamingDecoder> text;
  if (as_text) text.emplace(*e->tokenizer);
  const GenerationResult r = generate(*e->transformer, *e->cache, e->config().vocab_size, prompt, g, [&](int32_t id) {
    if (text) {
      const std::string piece = text->push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    } else {
      std::printf("%d ", id);
    }
    std::fflush(stdout);
  });
  if (text) {
    const std::string rest = text->finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::printf("\n");
  std::fflush(stdout);

  if (!o.dump_logits.empty())
    write_npy(o.dump_logits, {static_cast<int64_t>(r.tokens.size()), e->config().vocab_size}, r.logits.data());
  e->finish_forward();
  print_stats(stderr, *e, r, o.sampling);
  if (e->dist) print_rank_stats(stderr, *e);
  if (!o.dump_logits.empty())
    std::fprintf(stderr, "logits    %zu x %lld float32 written to %s\n", r.tokens.size(),
                 static_cast<long long>(e->config().vocab_size), o.dump_logits.c_str());
  return 0;
}

}  // namespace

Action add_run_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Generate from a prompt with a Hugging Face MoE model directory (config.json + safetensors [+ tokenizer.json]).\n"
      "Streams the output to stdout (text when the model has tokenizer.json, else token ids); a stats block\n"
      "(load time, prompt and decode tokens/s) goes to stderr.");
  auto o = std::make_shared<RunOptions>();
  add_engine_options(*cmd, o->engine);
  auto* prompt = cmd->add_option("--prompt,-p", o->prompt, "Prompt text (encoded with the model's tokenizer.json)");
  auto* tokens = cmd->add_option("--tokens", o->tokens, "Prompt as comma-separated token ids, e.g. 1,415,2936");
  prompt->excludes(tokens);
  cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "Stop after this many new tokens")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_sampling_options(*cmd, o->sampling);
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_flag("--print-ids", o->print_ids, "Print generated token ids even when the model has a tokenizer");
  cmd->add_option("--dump-logits", o->dump_logits,
                  "Write every step's logits to FILE as a float32 .npy array (steps x vocab); row i is the\n"
                  "distribution the i-th new token was drawn from");
  return [o, prompt, tokens] {
    if (prompt->count() == 0 && tokens->count() == 0) fail("moe run: give a prompt with --prompt or --tokens");
    return run(*o, prompt->count() > 0);
  };
}

}  // namespace moe::cli
