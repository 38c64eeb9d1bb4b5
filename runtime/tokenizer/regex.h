// PCRE2 (UTF + UCP, JIT-compiled once) for the patterns tokenizer.json carries.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe::tok {

class Regex {
 public:
  // Throws moe::Error naming `what` when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& what);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Non-empty, non-overlapping matches as byte ranges [start, end), left to right.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  // Escapes a literal string for use as a pattern.
  static std::string escape(std::string_view literal);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::tok
