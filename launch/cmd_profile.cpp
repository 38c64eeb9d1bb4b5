// `moe profile`: runs a prompt set through the model (every expert resident) and records which
// experts the routers choose, per layer, as JSON for static placement (`--placement FILE` on
// `moe run` / `moe chat` with --host-mem). See docs/offloading.md.
#include <cstdio>
#include <fstream>
#include <random>

#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/offload/routing_profile.h"

namespace moe::cli {
namespace {

struct ProfileOptions {
  EngineOptions engine;
  std::string prompts_file;
  int64_t random_prompts = 0;
  int64_t prompt_tokens = 64;
  int64_t max_new_tokens = 16;
  uint64_t seed = 0;
  std::string out = "routing-profile.json";
};

int profile(const ProfileOptions& o) {
  MOE_CHECK(!o.prompts_file.empty() || o.random_prompts > 0,
            "moe profile needs prompts: --prompts FILE (one per line) or --random N");
  ProfileOptions opts = o;
  opts.engine.host_mem.clear();  // profiling runs every expert resident
  std::unique_ptr<Engine> e = load_engine(opts.engine);
  std::vector<std::vector<int32_t>> prompts;
  if (!o.prompts_file.empty()) {
    std::ifstream in(o.prompts_file);
    MOE_CHECK(in.good(), o.prompts_file, ": cannot open the prompt set");
    const Tokenizer& tok = e->require_tokenizer("--prompts");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(tok.encode(line, /*add_special_tokens=*/true));
  }
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> id(3, static_cast<int32_t>(e->config().vocab_size - 1));
  for (int64_t i = 0; i < o.random_prompts; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(o.prompt_tokens));
    for (int32_t& t : p) t = id(rng);
    prompts.push_back(std::move(p));
  }
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  MOE_CHECK(longest > 0, o.prompts_file, ": no prompts");
  e->prepare(static_cast<int64_t>(longest) + std::max<int64_t>(o.max_new_tokens, 1));
  RoutingProfiler profiler(e->config(), e->model->weights());
  e->transformer->set_expert_provider(&profiler);
  GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  for (size_t i = 0; i < prompts.size(); ++i) {
    e->cache->clear();
    generate(*e->transformer, *e->cache, e->config().vocab_size, prompts[i], g);
    std::fprintf(stderr, "\rprofiled %zu/%zu prompts", i + 1, prompts.size());
  }
  e->transformer->set_expert_provider(nullptr);
  profiler.write_json(o.out);
  std::fprintf(stderr, "\nrouting profile of %zu prompts written to %s\n", prompts.size(), o.out.c_str());
  return 0;
}

}  // namespace

Action add_profile_command(CLI::App& app) {
  auto o = std::make_shared<ProfileOptions>();
  CLI::App* cmd = app.add_subcommand("profile", "Record routing statistics on a prompt set (for static placement)");
  add_engine_options(*cmd, o->engine);
  cmd->add_option("--prompts", o->prompts_file, "Prompt set: a text file, one prompt per line");
  cmd->add_option("--random", o->random_prompts, "Or/also: this many random-token prompts");
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "Length of each random prompt")->capture_default_str();
  cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "Greedy tokens generated per prompt")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_option("--out,-o", o->out, "Where to write the profile (JSON)")->capture_default_str();
  return [o] { return profile(*o); };
}

}  // namespace moe::cli
