// Exact agreement with the Rust `tokenizers` library on the committed fixtures:
// tests/fixtures/tokenizers/<name>/expected.jsonl holds, per line of corpus.jsonl,
// {"ids": encode(text, add_special_tokens=False), "decoded": decode(ids, skip_special_tokens=False)}
// and expected_special.jsonl, for the first lines, {"ids": encode(text, add_special_tokens=True),
// "decoded_skip": decode(ids, skip_special_tokens=True)}, both written by tokenizers 0.23.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
const fs::path kRoot = fs::path(MOE_TEST_DATA_DIR) / "tokenizers";

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream f(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::vector<std::string> corpus_texts() {
  std::vector<std::string> out;
  for (const auto& line : read_lines(kRoot / "corpus.jsonl")) out.push_back(nlohmann::json::parse(line).at("text"));
  return out;
}

std::vector<fs::path> fixture_dirs() {
  std::vector<fs::path> out;
  if (!fs::exists(kRoot)) return out;
  for (const auto& e : fs::directory_iterator(kRoot)) {
    if (e.is_directory() && fs::exists(e.path() / "expected.jsonl")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? "," : "") << ids[i];
  s << "]";
  return s.str();
}

TEST(TokenizerCorpus, FixturesExist) {
  EXPECT_GE(fixture_dirs().size(), 3u) << "expected >= 3 tokenizer fixture dirs under " << kRoot;
  EXPECT_GE(corpus_texts().size(), 10000u) << "corpus.jsonl must have >= 10,000 lines";
}

void check_dir(const fs::path& dir, const std::vector<std::string>& texts) {
  const moe::Tokenizer tok = moe::Tokenizer::load(dir);
  const auto expected = read_lines(dir / "expected.jsonl");
  ASSERT_EQ(expected.size(), texts.size()) << dir;
  size_t ok = 0, reported = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto e = nlohmann::json::parse(expected[i]);
    const auto want_ids = e.at("ids").get<std::vector<int32_t>>();
    const auto want_text = e.at("decoded").get<std::string>();
    const auto ids = tok.encode(texts[i], false);
    const bool ids_ok = ids == want_ids;
    const std::string text = tok.decode(want_ids, false);
    const bool text_ok = text == want_text;
    if (ids_ok && text_ok) {
      ++ok;
    } else if (reported++ < 5) {
      ADD_FAILURE() << dir.filename() << " line " << i + 1 << " text " << nlohmann::json(texts[i]).dump()
                    << "\n  ids  ours " << ids_str(ids) << "\n       want " << ids_str(want_ids)
                    << (text_ok ? ""
                                : "\n  decoded ours " + nlohmann::json(text).dump() + "\n          want " +
                                      nlohmann::json(want_text).dump());
    }
  }
  EXPECT_EQ(ok, texts.size()) << dir.filename() << ": " << ok << " / " << texts.size() << " lines agree";

  const auto special = read_lines(dir / "expected_special.jsonl");
  size_t sok = 0;
  reported = 0;
  for (size_t i = 0; i < special.size() && i < texts.size(); ++i) {
    const auto e = nlohmann::json::parse(special[i]);
    const auto want_ids = e.at("ids").get<std::vector<int32_t>>();
    const auto want_text = e.at("decoded_skip").get<std::string>();
    const auto ids = tok.encode(texts[i], true);
    const std::string text = tok.decode(want_ids, true);
    if (ids == want_ids && text == want_text) {
      ++sok;
    } else if (reported++ < 5) {
      ADD_FAILURE() << dir.filename() << " special line " << i + 1 << " text " << nlohmann::json(texts[i]).dump()
                    << "\n  ids  ours " << ids_str(ids) << "\n       want " << ids_str(want_ids)
                    << "\n  decoded_skip ours " << nlohmann::json(text).dump() << "\n               want "
                    << nlohmann::json(want_text).dump();
    }
  }
  EXPECT_EQ(sok, special.size()) << dir.filename() << ": special " << sok << " / " << special.size();
}

TEST(TokenizerCorpus, AllFixturesAgreeExactly) {
  const auto dirs = fixture_dirs();
  if (dirs.empty()) FAIL() << "no fixtures under " << kRoot;
  const auto texts = corpus_texts();
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.string());
    check_dir(dir, texts);
  }
}

}  // namespace
