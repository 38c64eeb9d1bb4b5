// moe: run Mixture-of-Experts language models from Hugging Face checkpoints.
#include <cstdio>
#include <exception>
#include <map>

#include "launch/commands.h"
#include "launch/distributed.h"
#include "runtime/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "moe: a runtime for Mixture-of-Experts language models (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE)\n"
      "from Hugging Face safetensors checkpoints."};
  app.set_version_flag("--version", std::string("moe-runtime ") + MOE_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'moe <command> --help' for a command's options.");

  std::map<CLI::App*, moe::cli::Action> actions;
  auto add = [&](moe::cli::Action (*adder)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    moe::cli::Action action = adder(app);
    actions[app.get_subcommands({})[before]] = std::move(action);
  };
  add(moe::cli::add_run_command);
  add(moe::cli::add_chat_command);
  add(moe::cli::add_serve_command);
  add(moe::cli::add_coordinator_command);
  add(moe::cli::add_worker_command);
  add(moe::cli::add_scale_command);
  add(moe::cli::add_tokenize_command);
  add(moe::cli::add_eval_command);
  add(moe::cli::add_plan_command);
  add(moe::cli::add_profile_command);
  add(moe::cli::add_make_tiny_command);
  add(moe::cli::add_convert_command);
  add(moe::cli::add_devices_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const moe::cli::AlreadyReported&) {
    return 1;  // rank 0 of this mpirun job printed the error
  } catch (const moe::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
