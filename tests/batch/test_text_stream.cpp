// TextStream: generated ids as final text, with stop strings held back until they are decided,
// against the tokenizer's own decode of the same ids (an independent oracle: the whole text).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/batch/text_stream.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

const Tokenizer& tokenizer() {
  static const Tokenizer t =
      Tokenizer::load(std::filesystem::path(MOE_TEST_DATA_DIR) / "tokenizers" / "sentencepiece_bpe");
  return t;
}

struct Streamed {
  std::string text;
  bool stopped = false;
  std::string matched;
  std::vector<std::string> pieces;
};

Streamed stream(const std::vector<int32_t>& ids, std::vector<std::string> stop) {
  TextStream s(tokenizer(), std::move(stop), true);
  Streamed out;
  for (const int32_t id : ids) {
    out.pieces.push_back(s.push(id));
    out.text += out.pieces.back();
    if (s.stopped()) break;
  }
  if (!s.stopped()) out.text += s.finish();
  out.stopped = s.stopped();
  out.matched = s.matched();
  return out;
}

const std::string kText = "The quick brown fox jumps over the lazy dog, then naps. Ünïcödé 😀 too!";

TEST(TextStream, WithoutStopStringsItIsTheWholeDecode) {
  const std::vector<int32_t> ids = tokenizer().encode(kText, false);
  EXPECT_EQ(stream(ids, {}).text, tokenizer().decode(ids, true));
}

TEST(TextStream, EndsRightBeforeTheFirstStopString) {
  const std::vector<int32_t> ids = tokenizer().encode(kText, false);
  const std::string whole = tokenizer().decode(ids, true);
  for (const std::string stop : {"fox", "lazy dog", "s.", "😀", "!", "o"}) {
    const Streamed s = stream(ids, {stop, "never appears"});
    ASSERT_NE(whole.find(stop), std::string::npos) << stop;
    EXPECT_EQ(s.text, whole.substr(0, whole.find(stop))) << stop;
    EXPECT_TRUE(s.stopped) << stop;
    EXPECT_EQ(s.matched, stop);
  }
}

TEST(TextStream, TheEarliestOfSeveralStopStringsWins) {
  const std::vector<int32_t> ids = tokenizer().encode(kText, false);
  const Streamed s = stream(ids, {"naps", "brown", "dog"});
  EXPECT_EQ(s.matched, "brown");
  EXPECT_EQ(s.text, "The quick ");
}

TEST(TextStream, APrefixOfAStopStringIsHeldBackThenReleased) {
  const std::vector<int32_t> ids = tokenizer().encode(kText, false);
  const std::string whole = tokenizer().decode(ids, true);
  // "the lazy" starts like "the lazy cat", which never comes: held back, then released intact.
  const Streamed s = stream(ids, {"the lazy cat"});
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(s.text, whole);
  std::string emitted;
  bool held = false;
  for (const std::string& p : s.pieces) {
    emitted += p;
    if (emitted.size() >= 4 && emitted.compare(emitted.size() - 4, 4, "the ") == 0) held = true;
  }
  EXPECT_FALSE(held) << "text ending in a prefix of the stop string was sent before it was decided";
}

TEST(TextStream, EmptyStopStringsAreRefused) {
  EXPECT_THROW(TextStream(tokenizer(), {""}, true), Error);
}

}  // namespace
}  // namespace moe
