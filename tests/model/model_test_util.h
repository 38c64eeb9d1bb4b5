// Shared helpers for the model-area tests: temporary directories, config.json text, a
// safetensors rewriter (to damage a synthetic checkpoint), and an error-message matcher.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/synthetic_model.h"

namespace moe::test {

using nlohmann::json;

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string tag = info ? std::string(info->test_suite_name()) + "." + info->name() : "x";
    for (char& ch : tag)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.') ch = '_';
    path_ = std::filesystem::temp_directory_path() /
            ("moe_model_tests_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + tag);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline json read_json(const std::filesystem::path& path) {
  return json::parse(read_text(path));
}
inline void write_json(const std::filesystem::path& path, const json& j) {
  write_text(path, j.dump(2));
}

// Runs `stmt`; the test fails unless it throws moe::Error whose message contains every part.
inline void expect_error_contains(const std::function<void()>& stmt, std::initializer_list<std::string> parts,
                                  const char* stmt_text, const char* file, int line) {
  ::testing::ScopedTrace trace(file, line, stmt_text);
  try {
    stmt();
  } catch (const moe::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_TRUE(msg.find(p) != std::string::npos) << "the error message lacks \"" << p << "\":\n  " << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-moe::Error exception: " << e.what();
    return;
  } catch (...) {
    ADD_FAILURE() << "threw something that is not a std::exception";
    return;
  }
  ADD_FAILURE() << "did not throw (expected moe::Error mentioning the given parts)";
}

#define EXPECT_ERROR_CONTAINS(stmt, ...) \
  ::moe::test::expect_error_contains([&] { stmt; }, __VA_ARGS__, #stmt, __FILE__, __LINE__)

// ---- config.json bodies: small, valid, one per architecture ----

inline json base_config(const std::string& arch) {
  json j = {{"vocab_size", 100},        {"hidden_size", 64},
            {"num_hidden_layers", 2},   {"num_attention_heads", 4},
            {"num_key_value_heads", 2}, {"num_experts_per_tok", 2},
            {"hidden_act", "silu"},     {"max_position_embeddings", 256}};
  if (arch == "mixtral") {
    j["architectures"] = {"MixtralForCausalLM"};
    j["model_type"] = "mixtral";
    j["num_local_experts"] = 4;
    j["intermediate_size"] = 96;
  } else if (arch == "qwen2_moe") {
    j["architectures"] = {"Qwen2MoeForCausalLM"};
    j["model_type"] = "qwen2_moe";
    j["num_experts"] = 4;
    j["moe_intermediate_size"] = 32;
    j["intermediate_size"] = 96;
    j["shared_expert_intermediate_size"] = 48;
  } else if (arch == "qwen3_moe") {
    j["architectures"] = {"Qwen3MoeForCausalLM"};
    j["model_type"] = "qwen3_moe";
    j["num_experts"] = 4;
    j["moe_intermediate_size"] = 32;
  } else if (arch == "olmoe") {
    j["architectures"] = {"OlmoeForCausalLM"};
    j["model_type"] = "olmoe";
    j["num_experts"] = 4;
    j["intermediate_size"] = 32;
  } else {
    ADD_FAILURE() << "base_config: unknown arch " << arch;
  }
  return j;
}

// The path used as `source` by parse tests; messages must name it.
inline std::filesystem::path fake_source() {
  return "/models/test-model/config.json";
}

// ---- safetensors rewriting ----

struct StoredTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Every tensor of one safetensors file, copied into memory (the file is closed on return).
inline std::vector<StoredTensor> read_all_tensors(const std::filesystem::path& file) {
  std::vector<StoredTensor> out;
  const SafetensorsFile f = SafetensorsFile::open(file);
  for (const SafetensorsEntry& e : f.entries()) {
    const TensorView v = f.view(e.name);
    const auto* p = static_cast<const uint8_t*>(v.data);
    out.push_back({e.name, e.dtype, e.shape, std::vector<uint8_t>(p, p + v.nbytes)});
  }
  return out;
}

inline void write_all_tensors(const std::filesystem::path& file, const std::vector<StoredTensor>& tensors) {
  SafetensorsWriter w;
  for (const StoredTensor& t : tensors) w.add(t.name, t.dtype, t.shape, t.bytes);
  w.set_metadata({{"format", "pt"}});
  w.write(file);
}

inline StoredTensor* find_tensor(std::vector<StoredTensor>& tensors, const std::string& name) {
  for (StoredTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

inline bool erase_tensor(std::vector<StoredTensor>& tensors, const std::string& name) {
  for (auto it = tensors.begin(); it != tensors.end(); ++it)
    if (it->name == name) {
      tensors.erase(it);
      return true;
    }
  return false;
}

// A test suite sharing one synthetic tiny Mixtral (tiny_model_spec("mixtral")), written once
// per suite into a temporary directory.
class TinyMixtralSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_model(tiny_model_spec("mixtral"), dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static const std::filesystem::path& model_dir() { return dir_->path(); }

 private:
  static inline TempDir* dir_ = nullptr;
};

}  // namespace moe::test
