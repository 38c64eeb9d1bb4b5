// StreamingDecoder: text is emitted only when its UTF-8 is complete and the concatenation of
// push()/finish() equals decode(all ids). streaming.jsonl (written with tokenizers 0.23.3 by
// tests/tokenizer/make_tokenizer_fixtures.py) holds, per case, the ids of a corpus line whose
// characters are split across byte tokens and the text the prefix/read-offset method emits after
// each id (decode with skip_special_tokens=False).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
const fs::path kRoot = fs::path(MOE_TEST_DATA_DIR) / "tokenizers";

bool ends_with_fffd(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

TEST(StreamingDecoder, MatchesTheReferencePieces) {
  std::ifstream f(kRoot / "streaming.jsonl");
  if (!f) FAIL() << "no streaming.jsonl";
  std::map<std::string, moe::Tokenizer> toks;
  size_t cases = 0;
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    const auto c = nlohmann::json::parse(line);
    const std::string name = c.at("fixture");
    if (!toks.count(name)) toks.emplace(name, moe::Tokenizer::load(kRoot / name));
    const auto& tok = toks.at(name);
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const auto want = c.at("pieces").get<std::vector<std::string>>();
    moe::StreamingDecoder dec(tok, false);
    std::string all;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string piece = dec.push(ids[i]);
      EXPECT_EQ(piece, want[i]) << name << " case " << cases << " token " << i;
      EXPECT_FALSE(ends_with_fffd(piece));
      all += piece;
    }
    all += dec.finish();
    EXPECT_EQ(all, tok.decode(ids, false)) << name << " case " << cases;
    ++cases;
  }
  EXPECT_GE(cases, 100u);
}

// Emoji and CJK made of <0xNN> byte tokens (SentencePiece byte fallback) and of byte-level
// pieces: nothing is emitted half-way, and the concatenation equals decode, BOS skipped and the
// leading-space strip included.
TEST(StreamingDecoder, HoldsBackSplitCharacters) {
  for (const char* name : {"sentencepiece_bpe", "sentencepiece_metaspace", "llama3_bytelevel", "qwen2_bytelevel_nfc"}) {
    if (!fs::exists(kRoot / name / "tokenizer.json")) FAIL() << "no fixture " << name;
    const auto tok = moe::Tokenizer::load(kRoot / name);
    size_t held = 0;
    for (const std::string text :
         {"\xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87 ok", " lead space \xF0\x9F\xA7\x91\xE2\x80\x8D\xF0\x9F\x92\xBB",
          "x\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D\xE0\xA4\xA6\xE0\xA5\x80 end"}) {
      const auto ids = tok.encode(text, true);
      for (bool skip : {true, false}) {
        moe::StreamingDecoder dec(tok, skip);
        std::string all;
        for (int32_t id : ids) {
          const std::string piece = dec.push(id);
          EXPECT_FALSE(ends_with_fffd(piece)) << name;
          held += piece.empty();
          all += piece;
        }
        all += dec.finish();
        EXPECT_EQ(all, tok.decode(ids, skip)) << name << " '" << text << "'";
      }
    }
    EXPECT_GT(held, 0u) << name << ": some token should have been held back";
  }
}

TEST(StreamingDecoder, IncompleteTailComesOutOfFinish) {
  const fs::path dir = kRoot / "sentencepiece_bpe";
  if (!fs::exists(dir / "tokenizer.json")) FAIL();
  const auto tok = moe::Tokenizer::load(dir);
  const auto e2 = tok.token_to_id("<0xE2>");
  const auto a = tok.token_to_id("a");
  ASSERT_TRUE(e2 && a);
  moe::StreamingDecoder dec(tok);
  EXPECT_EQ(dec.push(*a), "a");
  EXPECT_EQ(dec.push(*e2), "");
  EXPECT_EQ(dec.finish(), "\xEF\xBF\xBD");
}

}  // namespace
