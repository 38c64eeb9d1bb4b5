// A competing CPU load for the contention benchmarks: N child processes that spin on a core each
// until stopped (what a build or another busy program beside the engine does to its threads).
#pragma once

#include <sys/types.h>

#include <vector>

namespace moe::bench {

class BusyLoad {
 public:
  BusyLoad() = default;
  BusyLoad(const BusyLoad&) = delete;
  BusyLoad& operator=(const BusyLoad&) = delete;
  ~BusyLoad() { stop(); }

  // Forks `processes` spinning children (none when 0). Throws moe::Error when fork fails.
  void start(int processes);
  // Kills and reaps them (idempotent).
  void stop();
  int processes() const { return static_cast<int>(pids_.size()); }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace moe::bench
