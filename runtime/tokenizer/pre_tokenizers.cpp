#include "runtime/tokenizer/pre_tokenizers.h"

#include <utility>

#include "runtime/core/error.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/utf8.h"

namespace moe::tok {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

using Ranges = std::vector<std::pair<size_t, size_t>>;

struct Span {
  size_t start, end;
  bool remove;
};

// NormalizedString::split: `matches` are sorted non-overlapping ranges of `text`; appends the
// non-empty resulting splits of `piece` to `out`.
void split_by(const Piece& piece, const Ranges& matches, bool invert, Behavior behavior, std::vector<Piece>& out) {
  const std::string& text = piece.text;
  if (text.empty()) return;
  thread_local std::vector<Span> all;  // (offsets, is_match) covering the text
  thread_local std::vector<Span> spans;
  all.clear();
  spans.clear();
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) all.push_back({prev, s, invert});
    all.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size()) all.push_back({prev, text.size(), invert});

  bool previous_match = false;
  switch (behavior) {
    case Behavior::kRemoved: spans = all; break;
    case Behavior::kIsolated:
      for (const auto& sp : all) spans.push_back({sp.start, sp.end, false});
      break;
    case Behavior::kContiguous:
      for (const auto& sp : all) {
        if (sp.remove == previous_match && !spans.empty()) {
          spans.back().end = sp.end;
        } else {
          spans.push_back({sp.start, sp.end, false});
        }
        previous_match = sp.remove;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const auto& sp : all) {
        if (sp.remove && !previous_match && !spans.empty()) {
          spans.back().end = sp.end;
        } else {
          spans.push_back({sp.start, sp.end, false});
        }
        previous_match = sp.remove;
      }
      break;
    case Behavior::kMergedWithNext:
      for (size_t k = all.size(); k-- > 0;) {
        const auto& sp = all[k];
        if (sp.remove && !previous_match && !spans.empty()) {
          spans.back().start = sp.start;
        } else {
          spans.push_back({sp.start, sp.end, false});
        }
        previous_match = sp.remove;
      }
      for (size_t a = 0, b = spans.size(); a + 1 < b; ++a, --b) std::swap(spans[a], spans[b - 1]);
      break;
  }
  for (const auto& sp : spans) {
    if (sp.remove || sp.end == sp.start) continue;
    out.push_back({text.substr(sp.start, sp.end - sp.start), piece.first && sp.start == 0});
  }
}

template <class Pred>
void char_matches(const std::string& text, Pred pred, Ranges& out) {
  out.clear();
  size_t i = 0;
  while (i < text.size()) {
    const size_t s = i;
    if (pred(next_cp(text, i))) out.emplace_back(s, i);
  }
}

Behavior parse_behavior(const std::string& b, const std::string& where) {
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  fail(where, ": split behavior '", b, "' is not supported");
}

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(Pattern p, Behavior b, bool invert) : pattern_(std::move(p)), behavior_(b), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    scratch.clear();
    thread_local Ranges m;
    for (const auto& p : pieces) {
      pattern_.find_all(p.text, m);
      split_by(p, m, invert_, behavior_, scratch);
    }
    pieces.swap(scratch);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_.emplace(kGpt2Pattern, "ByteLevel");
  }
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    scratch.clear();
    thread_local Ranges m;
    thread_local std::string buf;
    for (auto& p : pieces) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, 1, ' ');
      if (regex_) {
        regex_->find_all(p.text, m);
        split_by(p, m, false, Behavior::kIsolated, scratch);
      } else if (!p.text.empty()) {
        scratch.push_back(std::move(p));
      }
    }
    for (auto& p : scratch) {
      buf.clear();
      byte_level_encode(p.text, buf);
      p.text.swap(buf);
    }
    pieces.swap(scratch);
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

enum class Prepend { kAlways, kFirst, kNever };

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(std::string replacement, Prepend scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    scratch.clear();
    thread_local Ranges m;
    for (auto& p : pieces) {
      std::string t;
      t.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ') {
          t += replacement_;
        } else {
          t.push_back(c);
        }
      }
      const bool starts = t.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == Prepend::kAlways || (scheme_ == Prepend::kFirst && p.first))) {
        t.insert(0, replacement_);
      }
      p.text.swap(t);
      if (split_) {
        m.clear();
        size_t pos = 0;
        while ((pos = p.text.find(replacement_, pos)) != std::string::npos) {
          m.emplace_back(pos, pos + replacement_.size());
          pos += replacement_.size();
        }
        split_by(p, m, false, Behavior::kMergedWithNext, scratch);
      } else if (!p.text.empty()) {
        scratch.push_back(std::move(p));
      }
    }
    pieces.swap(scratch);
  }

 private:
  std::string replacement_;
  Prepend scheme_;
  bool split_;
};

class DigitsPre final : public PreTokenizer {
 public:
  explicit DigitsPre(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    scratch.clear();
    thread_local Ranges m;
    for (const auto& p : pieces) {
      char_matches(p.text, is_numeric, m);
      split_by(p, m, false, individual_ ? Behavior::kIsolated : Behavior::kContiguous, scratch);
    }
    pieces.swap(scratch);
  }

 private:
  bool individual_;
};

class WhitespaceSplitPre final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    scratch.clear();
    thread_local Ranges m;
    for (const auto& p : pieces) {
      char_matches(p.text, is_whitespace, m);
      split_by(p, m, false, Behavior::kRemoved, scratch);
    }
    pieces.swap(scratch);
  }
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const override {
    for (const auto& p : items_) p->pre_tokenize(pieces, scratch);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer_at(const nlohmann::json& j, const std::string& where, int depth) {
  if (j.is_null()) return nullptr;
  const std::string type = get_type(j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "Split") {
    return std::make_unique<SplitPre>(Pattern::from_json(j, w), parse_behavior(get_string(j, "behavior", w), w),
                                      get_bool(j, "invert", false, w));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(get_bool(j, "add_prefix_space", true, w), get_bool(j, "use_regex", true, w));
  }
  if (type == "Metaspace") {
    Prepend scheme = get_bool(j, "add_prefix_space", true, w) ? Prepend::kAlways : Prepend::kNever;
    if (j.contains("prepend_scheme")) {
      const std::string s = get_string(j, "prepend_scheme", w);
      if (s == "always") {
        scheme = Prepend::kAlways;
      } else if (s == "first") {
        scheme = Prepend::kFirst;
      } else if (s == "never") {
        scheme = Prepend::kNever;
      } else {
        fail(w, ": prepend_scheme '", s, "' is not supported");
      }
    }
    std::string rep = get_string_or(j, "replacement", "\xE2\x96\x81", w);
    MOE_CHECK(!rep.empty() && cp_len(static_cast<unsigned char>(rep[0])) == rep.size(), w,
              ": replacement must be one character");
    return std::make_unique<MetaspacePre>(std::move(rep), scheme, get_bool(j, "split", true, w));
  }
  if (type == "Digits") return std::make_unique<DigitsPre>(get_bool(j, "individual_digits", false, w));
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPre>();
  if (type == "Sequence") {
    check_sequence_nesting(depth + 1, w);
    const auto& items = get_array(j, "pretokenizers", w);
    std::vector<std::unique_ptr<PreTokenizer>> out;
    for (size_t i = 0; i < items.size(); ++i) {
      auto p = make_pre_tokenizer_at(items[i], str_cat(where, ".pretokenizers[", i, "]"), depth + 1);
      if (p) out.push_back(std::move(p));
    }
    return std::make_unique<SequencePre>(std::move(out));
  }
  fail(where, ": pre_tokenizer type '", type, "' is not supported");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where) {
  return make_pre_tokenizer_at(j, where, 0);
}

}  // namespace moe::tok
