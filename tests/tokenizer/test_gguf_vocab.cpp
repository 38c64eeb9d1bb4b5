// A Tokenizer built from GGUF tokenizer metadata (runtime/tokenizer/gguf_vocab.h) agrees with the
// Hugging Face tokenizer of the same model. tests/fixtures/tokenizers/<name>/gguf_vocab.json is the
// metadata of <name>/vocab.gguf (both written by tests/tokenizer/make_gguf_vocab_fixtures.py, as
// llama.cpp's convert_hf_to_gguf.py writes them); the expected ids are the ones
// test_tokenizer_corpus.cpp checks against (expected.jsonl / expected_special.jsonl, by tokenizers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/gguf.h"
#include "runtime/tokenizer/gguf_vocab.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
const fs::path kRoot = fs::path(MOE_TEST_DATA_DIR) / "tokenizers";

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream f(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    for (const auto& line : read_lines(kRoot / "corpus.jsonl")) out.push_back(json::parse(line).at("text"));
    return out;
  }();
  return texts;
}

template <class T>
std::optional<T> opt(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

moe::GgufVocab vocab_from_json(const fs::path& p) {
  std::ifstream f(p);
  const json j = json::parse(f);
  moe::GgufVocab v;
  v.model = j.at("model").get<std::string>();
  v.pre = opt<std::string>(j, "pre").value_or("");
  v.tokens = j.at("tokens").get<std::vector<std::string>>();
  v.scores = opt<std::vector<float>>(j, "scores").value_or(std::vector<float>{});
  v.token_type = opt<std::vector<int32_t>>(j, "token_type").value_or(std::vector<int32_t>{});
  v.merges = opt<std::vector<std::string>>(j, "merges").value_or(std::vector<std::string>{});
  v.bos_token_id = opt<int64_t>(j, "bos_token_id");
  v.eos_token_id = opt<int64_t>(j, "eos_token_id");
  v.unknown_token_id = opt<int64_t>(j, "unknown_token_id");
  v.padding_token_id = opt<int64_t>(j, "padding_token_id");
  v.add_bos_token = opt<bool>(j, "add_bos_token");
  v.add_eos_token = opt<bool>(j, "add_eos_token");
  v.add_space_prefix = opt<bool>(j, "add_space_prefix");
  v.chat_template = opt<std::string>(j, "chat_template").value_or("");
  return v;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? "," : "") << ids[i];
  s << "]";
  return s.str();
}

// Encodes every corpus line and decodes the expected ids; returns the lines whose ids differ
// (decoding must agree everywhere).
std::vector<size_t> corpus_mismatches(const moe::Tokenizer& tok, const std::string& expected_dir) {
  const auto& texts = corpus();
  const auto expected = read_lines(kRoot / expected_dir / "expected.jsonl");
  EXPECT_EQ(expected.size(), texts.size());
  std::vector<size_t> bad;
  size_t reported = 0;
  for (size_t i = 0; i < std::min(texts.size(), expected.size()); ++i) {
    const auto e = json::parse(expected[i]);
    const auto want = e.at("ids").get<std::vector<int32_t>>();
    const auto ids = tok.encode(texts[i], false);
    if (ids != want) bad.push_back(i);
    const std::string text = tok.decode(want, false);
    if (text != e.at("decoded").get<std::string>() && reported++ < 5) {
      ADD_FAILURE() << expected_dir << " line " << i + 1 << ": decode " << json(text).dump() << " want "
                    << e.at("decoded").dump();
    }
  }
  return bad;
}

void report(const std::string& what, const std::vector<size_t>& bad, const moe::Tokenizer& tok,
            const std::string& expected_dir) {
  const auto& texts = corpus();
  const auto expected = read_lines(kRoot / expected_dir / "expected.jsonl");
  for (size_t k = 0; k < std::min<size_t>(bad.size(), 5); ++k) {
    const size_t i = bad[k];
    ADD_FAILURE() << what << " line " << i + 1 << " text " << json(texts[i]).dump() << "\n  ids  ours "
                  << ids_str(tok.encode(texts[i], false)) << "\n       want "
                  << ids_str(json::parse(expected[i]).at("ids").get<std::vector<int32_t>>());
  }
}

bool has_tool(const std::string& text) {
  return text.find("<tool>") != std::string::npos || text.find("</tool>") != std::string::npos;
}

// encode(add_special_tokens=true) and decode(skip_special_tokens=true) on the first lines; lines
// with <tool>/</tool> are allowed to differ in ids when `tool_may_differ`.
void check_special(const moe::Tokenizer& tok, const std::string& expected_dir, bool tool_may_differ = false) {
  const auto& texts = corpus();
  const auto expected = read_lines(kRoot / expected_dir / "expected_special.jsonl");
  ASSERT_FALSE(expected.empty());
  size_t bad = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto e = json::parse(expected[i]);
    const auto want = e.at("ids").get<std::vector<int32_t>>();
    const auto ids = tok.encode(texts[i], true);
    const auto text = tok.decode(want, true);
    const bool ids_ok = ids == want || (tool_may_differ && has_tool(texts[i]));
    if ((!ids_ok || text != e.at("decoded_skip").get<std::string>()) && bad++ < 5) {
      ADD_FAILURE() << expected_dir << " special line " << i + 1 << " ids ours " << ids_str(ids) << " want "
                    << ids_str(want) << " decode " << json(text).dump();
    }
  }
  EXPECT_EQ(bad, 0u) << expected_dir;
}

// Vocabulary size, special flags and BOS/EOS against the fixture's own tokenizer.json.
void check_vocab(const moe::Tokenizer& ours, const moe::GgufVocab& v, const std::string& dir) {
  const moe::Tokenizer hf = moe::Tokenizer::load(kRoot / dir);
  EXPECT_EQ(ours.vocab_size(), hf.vocab_size());
  for (int32_t id = 0; id < hf.vocab_size(); ++id) {
    ASSERT_EQ(ours.id_to_token(id), hf.id_to_token(id)) << dir << " id " << id;
    EXPECT_EQ(ours.is_special(id), hf.is_special(id)) << dir << " id " << id << " " << hf.id_to_token(id);
  }
  EXPECT_EQ(ours.eos_id(), hf.eos_id());
  EXPECT_EQ(ours.bos_id(),
            v.bos_token_id ? std::optional<int32_t>(static_cast<int32_t>(*v.bos_token_id)) : std::nullopt);
  EXPECT_EQ(ours.chat_template(), v.chat_template);
  EXPECT_FALSE(ours.chat_template().empty());
}

moe::GgufVocab load_vocab(const std::string& dir) {
  return vocab_from_json(kRoot / dir / "gguf_vocab.json");
}

TEST(GgufVocab, Llama3ByteLevel) {
  const auto v = load_vocab("llama3_bytelevel");
  const auto tok = moe::tokenizer_from_gguf_vocab(v, kRoot / "llama3_bytelevel" / "vocab.gguf");
  check_vocab(tok, v, "llama3_bytelevel");
  // GGUF has no lstrip/rstrip: <tool> (lstrip+rstrip) and </tool> (rstrip) are plain user-defined
  // tokens, so only lines holding them may differ.
  const auto bad = corpus_mismatches(tok, "llama3_bytelevel");
  std::vector<size_t> unexpected;
  for (const size_t i : bad) {
    if (!has_tool(corpus()[i])) unexpected.push_back(i);
  }
  report("llama3_bytelevel", unexpected, tok, "llama3_bytelevel");
  EXPECT_EQ(unexpected.size(), 0u);
  EXPECT_EQ(bad.size(), 24u) << "lines with <tool>/</tool> that differ (lstrip/rstrip lost)";
  std::printf("[ llama3_bytelevel ] %zu/%zu corpus lines equal; %zu differ, all with <tool>/</tool>\n",
              corpus().size() - bad.size(), corpus().size(), bad.size());
  // The lstrip/rstrip difference, pinned: the space before <tool> is kept as its own token.
  const auto ids = tok.encode("a <tool> b", false);
  EXPECT_EQ(tok.decode(ids, false), "a <tool> b");
  check_special(tok, "llama3_bytelevel", /*tool_may_differ=*/true);
  EXPECT_EQ(tok.encode("", true), std::vector<int32_t>{3000});
}

TEST(GgufVocab, Qwen2ByteLevelNfc) {
  const auto v = load_vocab("qwen2_bytelevel_nfc");
  const auto tok = moe::tokenizer_from_gguf_vocab(v, kRoot / "qwen2_bytelevel_nfc" / "vocab.gguf");
  check_vocab(tok, v, "qwen2_bytelevel_nfc");
  const auto bad = corpus_mismatches(tok, "qwen2_bytelevel_nfc");
  report("qwen2_bytelevel_nfc", bad, tok, "qwen2_bytelevel_nfc");
  EXPECT_EQ(bad.size(), 0u);
  check_special(tok, "qwen2_bytelevel_nfc");
  EXPECT_EQ(tok.bos_token(), "<|endoftext|>");  // as Qwen2 GGUFs; add_bos_token false
  EXPECT_TRUE(tok.encode("", true).empty());
}

TEST(GgufVocab, SentencePieceLegacy) {
  const auto v = load_vocab("sentencepiece_bpe");
  const auto tok = moe::tokenizer_from_gguf_vocab(v, kRoot / "sentencepiece_bpe" / "vocab.gguf");
  check_vocab(tok, v, "sentencepiece_bpe");
  const auto bad = corpus_mismatches(tok, "sentencepiece_bpe");
  report("sentencepiece_bpe", bad, tok, "sentencepiece_bpe");
  EXPECT_EQ(bad.size(), 0u);
  check_special(tok, "sentencepiece_bpe");
  EXPECT_EQ(tok.encode("", true), std::vector<int32_t>{1});
}

TEST(GgufVocab, SentencePieceMetaspace) {
  const auto v = load_vocab("sentencepiece_metaspace");
  const fs::path src = kRoot / "sentencepiece_metaspace" / "vocab.gguf";
  // The GGUF cannot say Metaspace(prepend_scheme "first"): by default it loads as legacy, which
  // is sentencepiece_bpe's tokenizer (same vocabulary).
  const auto legacy = moe::tokenizer_from_gguf_vocab(v, src);
  const auto bad_legacy = corpus_mismatches(legacy, "sentencepiece_bpe");
  report("sentencepiece_metaspace as legacy vs sentencepiece_bpe", bad_legacy, legacy, "sentencepiece_bpe");
  EXPECT_EQ(bad_legacy.size(), 0u);
  const auto first = moe::tokenizer_from_gguf_vocab(v, src, {.spm_prefix = moe::SpmPrefixStyle::kFirst});
  check_vocab(first, v, "sentencepiece_metaspace");
  const auto bad = corpus_mismatches(first, "sentencepiece_metaspace");
  report("sentencepiece_metaspace (kFirst)", bad, first, "sentencepiece_metaspace");
  EXPECT_EQ(bad.size(), 0u);
  check_special(first, "sentencepiece_metaspace");
}

// The reader path: vocab.gguf read with moe::GgufFile gives the same GgufVocab as the JSON.
TEST(GgufVocab, ReadGgufVocabMatchesJson) {
  for (const char* dir : {"llama3_bytelevel", "qwen2_bytelevel_nfc", "sentencepiece_bpe", "sentencepiece_metaspace"}) {
    SCOPED_TRACE(dir);
    const auto want = load_vocab(dir);
    const auto got = moe::read_gguf_vocab(moe::GgufFile::open(kRoot / dir / "vocab.gguf"));
    EXPECT_EQ(got.model, want.model);
    EXPECT_EQ(got.pre, want.pre);
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.scores, want.scores);
    EXPECT_EQ(got.token_type, want.token_type);
    EXPECT_EQ(got.merges, want.merges);
    EXPECT_EQ(got.bos_token_id, want.bos_token_id);
    EXPECT_EQ(got.eos_token_id, want.eos_token_id);
    EXPECT_EQ(got.unknown_token_id, want.unknown_token_id);
    EXPECT_EQ(got.padding_token_id, want.padding_token_id);
    EXPECT_EQ(got.add_bos_token, want.add_bos_token);
    EXPECT_EQ(got.add_eos_token, want.add_eos_token);
    EXPECT_EQ(got.add_space_prefix, want.add_space_prefix);
    EXPECT_EQ(got.chat_template, want.chat_template);
  }
}

// ---- errors ----

moe::GgufVocab tiny_gpt2() {
  moe::GgufVocab v;
  v.model = "gpt2";
  v.pre = "qwen2";
  v.tokens = {"a", "b", "ab", "<|end|>"};
  v.token_type = {1, 1, 1, 3};
  v.merges = {"a b"};
  v.eos_token_id = 3;
  return v;
}

moe::GgufVocab tiny_llama() {
  moe::GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>",
              "<s>",
              "</s>",
              "\xE2\x96\x81",
              "a",
              "\xE2\x96\x81"
              "a"};
  v.scores = {0, 0, 0, -1, -2, -3};
  v.token_type = {2, 3, 3, 1, 1, 1};
  v.unknown_token_id = 0;
  v.bos_token_id = 1;
  v.eos_token_id = 2;
  return v;
}

std::string error_of(const moe::GgufVocab& v) {
  try {
    (void)moe::tokenizer_from_gguf_vocab(v, "model.gguf");
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_ERROR(v, ...)                                                                    \
  do {                                                                                          \
    const std::string msg = error_of(v);                                                        \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg.find(part), std::string::npos) << msg; \
  } while (0)

TEST(GgufVocabErrors, TinyVocabulariesWork) {
  const auto g = moe::tokenizer_from_gguf_vocab(tiny_gpt2(), "g.gguf");
  EXPECT_EQ(g.encode("ab<|end|>", false), (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(g.is_special(3));
  const auto l = moe::tokenizer_from_gguf_vocab(tiny_llama(), "l.gguf");
  EXPECT_EQ(l.encode("a", true), (std::vector<int32_t>{1, 5}));
  EXPECT_EQ(l.decode(std::vector<int32_t>{1, 5}, true), "a");
}

// Special ids outside the vocabulary are ignored, as llama.cpp does ("bad special token"), not
// refused: the tokenizer builds, without that special token.
TEST(GgufVocabErrors, SpecialIdsOutsideTheVocabularyAreIgnored) {
  auto v = tiny_llama();
  v.eos_token_id = 6;  // 6 tokens
  v.padding_token_id = -3;
  const auto l = moe::tokenizer_from_gguf_vocab(v, "l.gguf");
  EXPECT_EQ(l.encode("a", true), (std::vector<int32_t>{1, 5}));
  const auto files = moe::gguf_tokenizer_files(v, "l.gguf");
  const auto cfg = nlohmann::json::parse(files.tokenizer_config_json);
  EXPECT_TRUE(!cfg.contains("eos_token") || cfg["eos_token"].is_null()) << cfg.dump();
  EXPECT_EQ(cfg["bos_token"], "<s>");
}

TEST(GgufVocabErrors, UnknownModelAndPre) {
  auto v = tiny_gpt2();
  v.model = "bert";
  EXPECT_ERROR(v, "model.gguf", "tokenizer.ggml.model 'bert' is not supported", "gpt2, llama");
  v = tiny_gpt2();
  v.pre = "starcoder";
  EXPECT_ERROR(v, "tokenizer.ggml.pre 'starcoder' is not supported", "llama-bpe", "qwen2", "olmo", "gpt-2");
  v.pre = "";
  EXPECT_ERROR(v, "tokenizer.ggml.pre is absent");
}

TEST(GgufVocabErrors, ArrayLengths) {
  auto v = tiny_llama();
  v.scores.pop_back();
  EXPECT_ERROR(v, "tokenizer.ggml.scores has 5 entries but tokenizer.ggml.tokens has 6");
  v = tiny_llama();
  v.token_type.push_back(1);
  EXPECT_ERROR(v, "tokenizer.ggml.token_type has 7 entries");
  v = tiny_llama();
  v.token_type[4] = 9;
  EXPECT_ERROR(v, "tokenizer.ggml.token_type[4] is 9");
  v = tiny_llama();
  v.tokens.clear();
  v.scores.clear();
  v.token_type.clear();
  EXPECT_ERROR(v, "tokenizer.ggml.tokens is absent or empty");
  v = tiny_llama();
  v.tokens[4] = "<s>";
  EXPECT_ERROR(v, "token \"<s>\" appears at ids 1 and 4");
  v = tiny_llama();
  v.tokens[4] = "\xff";
  EXPECT_ERROR(v, "tokenizer.ggml.tokens[4] is not valid UTF-8");
}

TEST(GgufVocabErrors, Merges) {
  auto v = tiny_gpt2();
  v.merges = {"a c"};
  EXPECT_ERROR(v, "tokenizer.ggml.merges[0] \"a c\" names \"c\", which is not in tokenizer.ggml.tokens");
  v.merges = {"b a"};
  EXPECT_ERROR(v, "makes \"ba\", which is not in tokenizer.ggml.tokens");
  v.merges = {"a b", "ab"};
  EXPECT_ERROR(v, "tokenizer.ggml.merges[1] \"ab\" is not two tokens separated by one space");
  v.merges.clear();
  EXPECT_ERROR(v, "tokenizer.ggml.merges is absent or empty");
  auto l = tiny_llama();
  l.scores.clear();
  EXPECT_ERROR(l, "needs tokenizer.ggml.scores or tokenizer.ggml.merges");
}

TEST(GgufVocabErrors, SpecialIds) {
  auto v = tiny_gpt2();
  v.add_bos_token = true;
  v.bos_token_id = -1;  // as absent (llama.cpp ignores such an id too): add_bos has no token then
  EXPECT_ERROR(v, "add_bos_token is set but tokenizer.ggml.bos_token_id is absent");
  v = tiny_gpt2();
  v.add_bos_token = true;
  EXPECT_ERROR(v, "add_bos_token is set but tokenizer.ggml.bos_token_id is absent");
  auto l = tiny_llama();
  l.unknown_token_id = 99;  // ignored: "<unk>" (id 0) is the unknown token, as without the key
  EXPECT_EQ(error_of(l), "(no error)");
  EXPECT_EQ(nlohmann::json::parse(moe::gguf_tokenizer_files(l, "l.gguf").tokenizer_config_json)["unk_token"], "<unk>");
  l = tiny_llama();
  l.bos_token_id.reset();  // llama adds BOS by default
  EXPECT_ERROR(l, "add_bos_token is set");
  l.add_bos_token = false;
  EXPECT_EQ(error_of(l), "(no error)");
}

}  // namespace
