// The runtime's one error type. Every failure says what went wrong, where (file, tensor,
// layer, config key) and what was expected. Library code throws; only launch/ catches,
// prints and chooses an exit code. Nothing in runtime/ or kernels/ calls exit().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything streamable: str_cat("layer ", 3, ": ", name).
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

}  // namespace moe

// MOE_CHECK(cond, parts...): throws moe::Error(str_cat(parts...)) when cond is false.
#define MOE_CHECK(cond, ...)               \
  do {                                     \
    if (!(cond)) ::moe::fail(__VA_ARGS__); \
  } while (0)
