// Every case in tests/fixtures/chat/<template>/cases.jsonl (written by make_chat_fixtures.py from
// what transformers renders) renders byte-identical here, or raises the same message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace {

namespace fs = std::filesystem;

fs::path chat_dir() {
  return fs::path(MOE_TEST_DATA_DIR) / "chat";
}

// transformers' _alias_reasoning_fields: a message with reasoning gets "thinking" and
// "reasoning_content" copies of it.
nlohmann::json alias_reasoning(nlohmann::json messages) {
  for (auto& msg : messages) {
    if (!msg.is_object()) continue;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if (msg.contains(key) && !msg[key].is_null()) {
        nlohmann::json r = msg[key];
        msg["thinking"] = r;
        msg["reasoning_content"] = r;
        break;
      }
    }
  }
  return messages;
}

struct Counts {
  int cases = 0;
};

void run_template_dir(const fs::path& dir, Counts& counts) {
  std::ifstream cfg_in(dir / "tokenizer_config.json");
  ASSERT_TRUE(cfg_in) << dir;
  nlohmann::json cfg = nlohmann::json::parse(cfg_in);
  moe::ChatTemplate t = moe::ChatTemplate::parse(cfg["chat_template"].get<std::string>(), dir.filename().string());
  std::ifstream cases(dir / "cases.jsonl");
  ASSERT_TRUE(cases) << dir;
  std::string line;
  int n = 0;
  while (std::getline(cases, line)) {
    if (line.empty()) continue;
    ++n;
    nlohmann::json c = nlohmann::json::parse(line);
    nlohmann::json ctx = {{"messages", alias_reasoning(c["messages"])},
                          {"tools", nullptr},
                          {"documents", nullptr},
                          {"add_generation_prompt", c["add_generation_prompt"]},
                          {"bos_token", cfg["bos_token"]},
                          {"eos_token", cfg["eos_token"]}};
    for (auto it = c["extra"].begin(); it != c["extra"].end(); ++it) ctx[it.key()] = it.value();
    SCOPED_TRACE(dir.filename().string() + " case " + std::to_string(n));
    if (c.contains("error")) {
      try {
        std::string out = t.render(ctx);
        ADD_FAILURE() << "expected error '" << c["error"].get<std::string>() << "', rendered:\n" << out;
      } catch (const moe::Error& e) {
        EXPECT_EQ(std::string(e.what()), c["error"].get<std::string>());
      }
    } else {
      EXPECT_EQ(t.render(ctx), c["rendered"].get<std::string>());
    }
  }
  EXPECT_GE(n, 8) << dir;
  counts.cases += n;
}

TEST(ChatFixtures, EveryCaseRendersAsTransformersDoes) {
  ASSERT_TRUE(fs::is_directory(chat_dir()));
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(chat_dir())) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  EXPECT_GE(dirs.size(), 6u);
  Counts counts;
  for (const auto& d : dirs) run_template_dir(d, counts);
  EXPECT_GT(counts.cases, 60);
}

}  // namespace
