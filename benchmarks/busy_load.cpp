#include "benchmarks/busy_load.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace moe::bench {

void BusyLoad::start(int processes) {
  stop();
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = fork();
    if (pid < 0) {
      const int err = errno;
      stop();
      fail("busy load: fork failed: ", std::strerror(err));
    }
    if (pid == 0) {
      volatile unsigned long spin = 0;
      for (;;) spin = spin + 1;  // until SIGKILL
    }
    pids_.push_back(pid);
  }
}

void BusyLoad::stop() {
  for (const pid_t pid : pids_) kill(pid, SIGKILL);
  for (const pid_t pid : pids_) waitpid(pid, nullptr, 0);
  pids_.clear();
}

}  // namespace moe::bench
