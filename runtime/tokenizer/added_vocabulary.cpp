#include "runtime/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "runtime/tokenizer/utf8.h"

namespace moe::tok {
namespace {

char32_t last_cp(std::string_view s) {
  size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return next_cp(s, b);
}

// regex \w$ / ^\w on the text before / after a match.
bool ends_with_word(std::string_view s) {
  return !s.empty() && is_word_char(last_cp(s));
}
bool starts_with_word(std::string_view s) {
  size_t i = 0;
  return !s.empty() && is_word_char(next_cp(s, i));
}

// Start of the trailing whitespace of s (regex \s*$).
size_t space_leftmost_at_end(std::string_view s) {
  size_t e = s.size();
  while (e > 0) {
    size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    size_t i = b;
    if (!is_whitespace(next_cp(s, i))) break;
    e = b;
  }
  return e;
}

// Length of the leading whitespace of s (regex ^\s*).
size_t space_rightmost_at_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_whitespace(next_cp(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view pattern, int32_t token) {
  if (pattern.empty()) return;
  size_t node = 0;
  for (char ch : pattern) {
    const auto c = static_cast<unsigned char>(ch);
    int32_t next = -1;
    for (const auto& [k, v] : nodes[node].children) {
      if (k == c) next = v;
    }
    if (next < 0) {
      next = static_cast<int32_t>(nodes.size());
      nodes[node].children.emplace_back(c, next);
      nodes.emplace_back();
    }
    node = static_cast<size_t>(next);
  }
  if (nodes[node].token < 0) nodes[node].token = token;  // the first of equal patterns wins
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  size_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int32_t next = -1;
    for (const auto& [k, v] : nodes[node].children) {
      if (k == c) {
        next = v;
        break;
      }
    }
    if (next < 0) break;
    node = static_cast<size_t>(next);
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1 - pos};
  }
  return best;
}

void AddedVocabulary::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_.clear();
  by_id_.clear();
  by_content_.clear();
  raw_ = Trie{};
  normalized_ = Trie{};
  max_id_ = -1;
  for (auto& t : tokens) {
    if (t.content.empty()) continue;
    const size_t idx = tokens_.size();
    by_id_[t.id] = idx;
    by_content_[t.content] = idx;
    max_id_ = std::max(max_id_, t.id);
    tokens_.push_back(std::move(t));
  }
  // tokenizers builds its tries from the special tokens first, then the others.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const auto& t = tokens_[i];
      if (t.special != (pass == 0)) continue;
      if (by_id_[t.id] != i) continue;  // superseded by a later entry with the same id
      if (!t.normalized) {
        raw_.insert(t.content, static_cast<int32_t>(i));
      } else {
        std::string p = t.content;
        if (normalizer) normalizer->normalize(p);
        normalized_.insert(p, static_cast<int32_t>(i));
      }
    }
  }
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

bool AddedVocabulary::is_special(int32_t id) const {
  const AddedToken* t = find(id);
  return t && t->special;
}

void AddedVocabulary::split(const Piece& piece, const Trie& trie, std::vector<AddedSplit>& out) const {
  const std::string& s = piece.text;
  const auto push_text = [&](size_t b, size_t e) {
    if (e > b) out.push_back({Piece{s.substr(b, e - b), piece.first && b == 0}, -1});
  };
  if (trie.empty()) {
    push_text(0, s.size());
    return;
  }
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    const auto [tok, len] = trie.longest_at(s, pos);
    if (tok < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;  // the automaton resumes after the match, whatever is done with it
    const AddedToken& t = tokens_[static_cast<size_t>(tok)];
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word(std::string_view(s).substr(0, start));
      const bool stop_space = stop == s.size() || !starts_with_word(std::string_view(s).substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(space_leftmost_at_end(std::string_view(s).substr(0, start)), start_offset);
    if (t.rstrip) stop += space_rightmost_at_start(std::string_view(s).substr(stop));
    if (start_offset < start) push_text(start_offset, start);
    out.push_back({Piece{s.substr(start, stop - start), piece.first && start == 0}, t.id});
    start_offset = stop;
  }
  push_text(start_offset, s.size());
}

void AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer,
                                            std::vector<AddedSplit>& out) const {
  out.clear();
  thread_local std::vector<AddedSplit> first_pass;
  first_pass.clear();
  split(Piece{std::string(text), true}, raw_, first_pass);
  for (auto& sp : first_pass) {
    if (sp.id >= 0) {
      out.push_back(std::move(sp));
      continue;
    }
    if (normalizer) normalizer->normalize(sp.piece.text);
    if (sp.piece.text.empty()) continue;
    split(sp.piece, normalized_, out);
  }
}

}  // namespace moe::tok
