#include "runtime/tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/utf8.h"

namespace moe::tok {
namespace {

constexpr size_t kCacheCapacity = 1 << 16;
constexpr size_t kCacheMaxWord = 256;  // as tokenizers: longer pre-tokens are not cached

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Symbol {
  int32_t c;
  int32_t prev, next;
  uint32_t len;  // bytes; 0 once merged away
};

struct QueuedMerge {
  uint32_t rank;
  uint32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: make the lowest rank, then the lowest pos, largest.
  bool operator<(const QueuedMerge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

Bpe::Bpe(const nlohmann::json& model, const std::string& where) {
  const std::string w = where + " (BPE)";
  if (const auto* d = child(model, "dropout"); d && !d->is_null()) {
    fail(w, ": dropout ", json_excerpt(*d), " is not supported (only null)");
  }
  const auto* v = child(model, "vocab");
  if (!v || !v->is_object()) fail(w, ": missing object field 'vocab'");
  vocab_.reserve(v->size());
  for (const auto& [tok, id] : v->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) {
      fail(w, ": vocab entry '", tok, "' has a bad id ", json_excerpt(id));
    }
    if (id.get<int64_t>() > kMaxTokenId) {
      fail(w, ": vocab entry '", tok, "' has id ", id.get<int64_t>(), ", above the largest supported id ", kMaxTokenId);
    }
    const auto i = id.get<int32_t>();
    vocab_[tok] = i;
    max_id_ = std::max(max_id_, i);
  }
  vocab_r_.assign(static_cast<size_t>(max_id_ + 1), nullptr);
  for (const auto& [tok, id] : vocab_) vocab_r_[static_cast<size_t>(id)] = &tok;

  const auto unk = get_string_or(model, "unk_token", "", w);
  if (const auto* u = child(model, "unk_token"); u && !u->is_null()) {
    unk_name_ = unk;  // as tokenizers: an unk_token outside the vocab fails only when needed
    if (const auto it = vocab_.find(unk); it != vocab_.end()) unk_id_ = it->second;
  }
  fuse_unk_ = get_bool(model, "fuse_unk", false, w);
  byte_fallback_ = get_bool(model, "byte_fallback", false, w);
  ignore_merges_ = get_bool(model, "ignore_merges", false, w);
  prefix_ = get_string_or(model, "continuing_subword_prefix", "", w);
  suffix_ = get_string_or(model, "end_of_word_suffix", "", w);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const auto it = vocab_.find(std::string_view(name));
    byte_ids_[static_cast<size_t>(b)] = it == vocab_.end() ? -1 : it->second;
  }

  const auto& merges = get_array(model, "merges", w);
  merges_.reserve(merges.size());
  const auto lookup = [&](const std::string& t, size_t rank) {
    const auto it = vocab_.find(t);
    if (it == vocab_.end()) fail(w, ": merges[", rank, "] uses '", t, "', which is not in the vocab");
    return it->second;
  };
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& m = merges[r];
    std::string a, b;
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) fail(w, ": merges[", r, "] '", s, "' is not 'a b'");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(w, ": merges[", r, "] must be \"a b\" or [\"a\", \"b\"], got ", json_excerpt(m));
    }
    const int32_t ia = lookup(a, r), ib = lookup(b, r);
    const std::string merged = a + (b.size() >= prefix_.size() ? b.substr(prefix_.size()) : std::string());
    merges_[pair_key(ia, ib)] = Merge{static_cast<uint32_t>(r), lookup(merged, r)};
  }
}

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_r_.size()) return nullptr;
  return vocab_r_[static_cast<size_t>(id)];
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() >= kCacheMaxWord) return merge_word(word, out);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (const auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(start), out.end()));
}

void Bpe::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> sym;
  thread_local std::string scratch;
  sym.clear();
  const auto add = [&](int32_t id, size_t len) {
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, n + 1, static_cast<uint32_t>(len)});
  };
  int32_t unk_id = -1;  // pending unknown run: id and bytes
  size_t unk_len = 0;
  size_t i = 0;
  while (i < w.size()) {
    const size_t len = cp_len(static_cast<unsigned char>(w[i]));
    const bool is_first = i == 0, is_last = i + len >= w.size();
    std::string_view s = w.substr(i, len);
    if ((!is_first && !prefix_.empty()) || (is_last && !suffix_.empty())) {
      scratch.clear();
      if (!is_first) scratch += prefix_;
      scratch += s;
      if (is_last) scratch += suffix_;
      s = scratch;
    }
    i += len;
    if (const auto it = vocab_.find(s); it != vocab_.end()) {
      if (unk_id >= 0) {
        add(unk_id, unk_len);
        unk_id = -1;
      }
      add(it->second, len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s) all &= byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : s) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (!unk_id_) {
      if (unk_name_.empty()) fail("BPE: no token for '", s, "' and the model has no unk_token");
      fail("BPE: no token for '", s, "' and unk_token '", unk_name_, "' is not in the vocab");
    }
    if (unk_id >= 0 && fuse_unk_) {
      unk_len += len;
    } else {
      if (unk_id >= 0) add(unk_id, unk_len);
      unk_id = *unk_id_;
      unk_len = len;
    }
  }
  if (unk_id >= 0) add(unk_id, unk_len);
  if (!sym.empty()) sym.back().next = -1;

  thread_local std::vector<QueuedMerge> heap_storage;
  heap_storage.clear();
  std::priority_queue<QueuedMerge> queue(std::less<QueuedMerge>(), std::move(heap_storage));
  for (size_t p = 0; p + 1 < sym.size(); ++p) {
    if (const auto it = merges_.find(pair_key(sym[p].c, sym[p + 1].c)); it != merges_.end()) {
      queue.push({it->second.rank, static_cast<uint32_t>(p), it->second.new_id});
    }
  }
  const auto n = static_cast<int32_t>(sym.size());
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& cur = sym[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = sym[static_cast<size_t>(next_pos)];
    const auto it = merges_.find(pair_key(cur.c, right.c));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    sym[static_cast<size_t>(next_pos)].len = 0;
    if (right.next > -1 && right.next < n) sym[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0) {
      if (const auto m = merges_.find(pair_key(sym[static_cast<size_t>(cur.prev)].c, cur.c)); m != merges_.end()) {
        queue.push({m->second.rank, static_cast<uint32_t>(cur.prev), m->second.new_id});
      }
    }
    if (cur.next > -1 && cur.next < n) {
      if (const auto m = merges_.find(pair_key(cur.c, sym[static_cast<size_t>(cur.next)].c)); m != merges_.end()) {
        queue.push({m->second.rank, top.pos, m->second.new_id});
      }
    }
  }
  for (const auto& s : sym) {
    if (s.len != 0) out.push_back(s.c);
  }
}

}  // namespace moe::tok
