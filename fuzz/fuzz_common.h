// Shared by the libFuzzer targets (fuzz/fuzz_*.cpp, docs/fuzzing.md): a private temporary
// directory for the readers that take a path, and the multi-part input format.
//
// A target that needs several files takes them from one input split at kPartSeparator
// ("\n#MOEFUZZ#\n", in every dictionary): part 0, part 1, ... Missing parts are empty.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace moe::fuzz {

inline constexpr std::string_view kPartSeparator = "\n#MOEFUZZ#\n";

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The parts of `input` separated by kPartSeparator; at least `min_parts` (empty ones appended).
inline std::vector<std::string_view> split_parts(std::string_view input, size_t min_parts) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t at = input.find(kPartSeparator);
    if (at == std::string_view::npos) {
      parts.push_back(input);
      break;
    }
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
  while (parts.size() < min_parts) parts.emplace_back();
  return parts;
}

// One directory per process under $TMPDIR (or /tmp), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/moe-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("moe fuzz: mkdtemp");
      std::abort();
    }
    static std::filesystem::path created = pattern;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(created, ec);
    });
    return created;
  }();
  return dir;
}

// An empty directory inside scratch_dir() (emptied on every call).
inline std::filesystem::path fresh_dir(const char* name) {
  const std::filesystem::path d = scratch_dir() / name;
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  std::filesystem::create_directories(d);
  return d;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::perror("moe fuzz: write");
    std::abort();
  }
}

// Reads every byte of [p, p + n): a view that points outside its mapping is an ASan report here.
inline uint8_t touch(const void* p, size_t n) {
  const auto* b = static_cast<const volatile uint8_t*>(p);
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc = static_cast<uint8_t>(acc ^ b[i]);
  return acc;
}

}  // namespace moe::fuzz
