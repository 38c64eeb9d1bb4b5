// Subcommands of the `moe` program. Each registers its options on the app and returns the
// action to run when it is the chosen subcommand; actions return the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace moe::cli {

using Action = std::function<int()>;

Action add_run_command(CLI::App& app);
Action add_make_tiny_command(CLI::App& app);
Action add_devices_command(CLI::App& app);
Action add_tokenize_command(CLI::App& app);
Action add_chat_command(CLI::App& app);
Action add_convert_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_plan_command(CLI::App& app);
Action add_profile_command(CLI::App& app);
Action add_serve_command(CLI::App& app);
Action add_coordinator_command(CLI::App& app);
Action add_worker_command(CLI::App& app);
Action add_scale_command(CLI::App& app);

}  // namespace moe::cli
