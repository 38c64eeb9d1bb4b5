// The communicator tests' guard against a hang: runs fn on another thread; a timeout fails the
// test and ends the program (hung threads cannot be joined) instead of stalling ctest.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>

namespace moe::parallel::test {

inline void within_seconds(int seconds, const std::function<void()>& fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(std::chrono::seconds(seconds)) == std::future_status::timeout) {
    ADD_FAILURE() << "timed out after " << seconds << " s: a rank is still waiting";
    std::fprintf(stderr, "communicator test hung, exiting\n");
    std::_Exit(1);
  }
  done.get();
}

}  // namespace moe::parallel::test
