// GGUF tokenizer metadata -> the equivalent tokenizer.json / tokenizer_config.json.
#include "runtime/tokenizer/gguf_vocab.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/tokenizer/utf8.h"

namespace moe {
namespace {

using json = nlohmann::json;

// llama.cpp's regexes for the byte-level pre-tokenizer names (src/llama-vocab.cpp), in the form
// the models' tokenizer.json files give them (Split, behavior Isolated, then ByteLevel without
// its own regex). The same strings are in transformers' gguf_tokenizer_mapping.py.
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum class BytePre { kLlama3, kQwen2, kGpt2 };

struct PreName {
  std::string_view name;
  BytePre pre;
};
constexpr PreName kBytePres[] = {
    {"llama-bpe", BytePre::kLlama3}, {"llama3", BytePre::kLlama3},          {"llama-v3", BytePre::kLlama3},
    {"qwen2", BytePre::kQwen2},      {"deepseek-r1-qwen", BytePre::kQwen2}, {"gpt-2", BytePre::kGpt2},
    {"olmo", BytePre::kGpt2},
};

std::string supported_pres() {
  std::string s;
  for (const auto& p : kBytePres) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json split_then_byte_level(std::string_view regex) {
  return {{"type", "Sequence"},
          {"pretokenizers", json::array({{{"type", "Split"},
                                          {"pattern", {{"Regex", std::string(regex)}}},
                                          {"behavior", "Isolated"},
                                          {"invert", false}},
                                         byte_level(false)})}};
}

// Code-point boundaries of s (valid UTF-8): offsets of every code point after the first.
std::vector<size_t> cp_boundaries(std::string_view s) {
  std::vector<size_t> out;
  size_t i = 0;
  while (i < s.size()) {
    i += tok::cp_len(static_cast<unsigned char>(s[i]));
    if (i < s.size()) out.push_back(i);
  }
  return out;
}

// transformers' tokenization_utils_base.generate_merges(vocab, vocab_scores): every split of
// every token into two tokens of the vocabulary, those of one token ordered by (id left, id
// right), then all stably sorted by (score of the token, code points left, code points right),
// descending.
std::vector<std::pair<int32_t, int32_t>> merges_from_scores(const std::vector<std::string>& tokens,
                                                            const std::vector<float>& scores,
                                                            const std::unordered_map<std::string_view, int32_t>& ids) {
  struct Cand {
    int32_t l, r;
    float score;
    size_t len_l, len_r;  // code points
  };
  std::vector<Cand> all;
  std::vector<Cand> local;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string_view tok = tokens[t];
    const auto cuts = cp_boundaries(tok);
    local.clear();
    for (size_t k = 0; k < cuts.size(); ++k) {
      const auto l = ids.find(tok.substr(0, cuts[k]));
      if (l == ids.end()) continue;
      const auto r = ids.find(tok.substr(cuts[k]));
      if (r == ids.end()) continue;
      local.push_back({l->second, r->second, scores[t], k + 1, cuts.size() - k});
    }
    std::stable_sort(local.begin(), local.end(),
                     [](const Cand& a, const Cand& b) { return std::tie(a.l, a.r) < std::tie(b.l, b.r); });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Cand& a, const Cand& b) {
    return std::tie(a.score, a.len_l, a.len_r) > std::tie(b.score, b.len_l, b.len_r);
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(all.size());
  for (const auto& c : all) out.emplace_back(c.l, c.r);
  return out;
}

class Builder {
 public:
  Builder(const GgufVocab& v, const std::filesystem::path& source, const GgufTokenizerOptions& opt)
      : v_(v), src_(source.string()), opt_(opt) {}

  GgufTokenizerFiles build() {
    check_arrays();
    json root;
    if (v_.model == "gpt2") {
      build_byte_level(root);
    } else if (v_.model == "llama") {
      build_sentencepiece(root);
    } else {
      fail(src_, ": tokenizer.ggml.model '", v_.model, "' is not supported (supported: gpt2, llama)");
    }
    root["version"] = "1.0";
    root["truncation"] = nullptr;
    root["padding"] = nullptr;
    root["added_tokens"] = added_tokens();
    root["post_processor"] = post_processor(root["post_processor"]);
    return {root.dump(), config().dump()};
  }

 private:
  GgufTokenType type_of(size_t id) const {
    return v_.token_type.empty() ? GgufTokenType::kNormal : static_cast<GgufTokenType>(v_.token_type[id]);
  }

  // A special id outside the vocabulary is ignored, as llama.cpp ignores it ("bad special
  // token"); the model config reads the same ids and carries the warning (ModelConfig::warnings).
  void check_id(std::optional<int64_t>& id) const {
    if (id && (*id < 0 || *id >= static_cast<int64_t>(v_.tokens.size()))) id.reset();
  }

  void check_arrays() {
    const size_t n = v_.tokens.size();
    if (n == 0) fail(src_, ": tokenizer.ggml.tokens is absent or empty");
    if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      fail(src_, ": tokenizer.ggml.tokens has ", n, " tokens, more than int32 ids can hold");
    }
    if (!v_.scores.empty() && v_.scores.size() != n) {
      fail(src_, ": tokenizer.ggml.scores has ", v_.scores.size(), " entries but tokenizer.ggml.tokens has ", n);
    }
    if (!v_.token_type.empty() && v_.token_type.size() != n) {
      fail(src_, ": tokenizer.ggml.token_type has ", v_.token_type.size(), " entries but tokenizer.ggml.tokens has ",
           n);
    }
    ids_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string& t = v_.tokens[i];
      if (!tok::is_valid_utf8(t)) fail(src_, ": tokenizer.ggml.tokens[", i, "] is not valid UTF-8");
      if (t.empty()) fail(src_, ": tokenizer.ggml.tokens[", i, "] is empty");
      const auto [it, fresh] = ids_.emplace(std::string_view(t), static_cast<int32_t>(i));
      if (!fresh)
        fail(src_, ": tokenizer.ggml.tokens: token ", json(t).dump(), " appears at ids ", it->second, " and ", i);
      if (!v_.token_type.empty() && (v_.token_type[i] < 0 || v_.token_type[i] > 6)) {
        fail(src_, ": tokenizer.ggml.token_type[", i, "] is ", v_.token_type[i],
             " (expected 0..6: undefined, normal, unknown, control, user-defined, unused, byte)");
      }
    }
    check_id(v_.bos_token_id);
    check_id(v_.eos_token_id);
    check_id(v_.unknown_token_id);
    check_id(v_.padding_token_id);
    if (!tok::is_valid_utf8(v_.chat_template)) fail(src_, ": tokenizer.chat_template is not valid UTF-8");
  }

  int32_t lookup_merge_part(std::string_view part, size_t r, std::string_view merge) const {
    const auto it = ids_.find(part);
    if (it == ids_.end()) {
      fail(src_, ": tokenizer.ggml.merges[", r, "] ", json(std::string(merge)).dump(), " names ",
           json(std::string(part)).dump(), ", which is not in tokenizer.ggml.tokens");
    }
    return it->second;
  }

  // tokenizer.ggml.merges as id pairs; each part and the merged token must be in the vocab.
  std::vector<std::pair<int32_t, int32_t>> file_merges() const {
    std::vector<std::pair<int32_t, int32_t>> out;
    out.reserve(v_.merges.size());
    std::string merged;
    for (size_t r = 0; r < v_.merges.size(); ++r) {
      const std::string_view m = v_.merges[r];
      const size_t sp = m.find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp + 1 == m.size() ||
          m.find(' ', sp + 1) != std::string_view::npos) {
        fail(src_, ": tokenizer.ggml.merges[", r, "] ", json(std::string(m)).dump(),
             " is not two tokens separated by one space");
      }
      const int32_t l = lookup_merge_part(m.substr(0, sp), r, m);
      const int32_t rr = lookup_merge_part(m.substr(sp + 1), r, m);
      merged.assign(m.substr(0, sp)).append(m.substr(sp + 1));
      if (!ids_.contains(merged)) {
        fail(src_, ": tokenizer.ggml.merges[", r, "] ", json(std::string(m)).dump(), " makes ", json(merged).dump(),
             ", which is not in tokenizer.ggml.tokens");
      }
      out.emplace_back(l, rr);
    }
    return out;
  }

  json bpe_model(const std::vector<std::pair<int32_t, int32_t>>& merges, bool spm, bool ignore_merges) const {
    json vocab = json::object();
    for (size_t i = 0; i < v_.tokens.size(); ++i) vocab[v_.tokens[i]] = i;
    json m = json::array();
    for (const auto& [l, r] : merges) {
      m.push_back(json::array({v_.tokens[static_cast<size_t>(l)], v_.tokens[static_cast<size_t>(r)]}));
    }
    json unk = nullptr;
    if (spm) {
      if (const auto u = unk_id()) unk = v_.tokens[static_cast<size_t>(*u)];
    }
    return {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", unk},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", spm},
            {"byte_fallback", spm},
            {"ignore_merges", ignore_merges},
            {"vocab", std::move(vocab)},
            {"merges", std::move(m)}};
  }

  // unknown_token_id, else the first token typed unknown.
  std::optional<int64_t> unk_id() const {
    if (v_.unknown_token_id) return v_.unknown_token_id;
    for (size_t i = 0; i < v_.token_type.size(); ++i) {
      if (type_of(i) == GgufTokenType::kUnknown) return static_cast<int64_t>(i);
    }
    return std::nullopt;
  }

  void build_byte_level(json& root) {
    if (v_.pre.empty()) {
      fail(src_,
           ": tokenizer.ggml.pre is absent; a gpt2 (byte-level) vocabulary needs it to know its pre-tokenizer "
           "(supported: ",
           supported_pres(), ")");
    }
    const auto* p =
        std::find_if(std::begin(kBytePres), std::end(kBytePres), [&](const PreName& x) { return x.name == v_.pre; });
    if (p == std::end(kBytePres)) {
      fail(src_, ": tokenizer.ggml.pre '", v_.pre,
           "' is not supported for tokenizer.ggml.model 'gpt2' (supported: ", supported_pres(), ")");
    }
    if (v_.merges.empty()) fail(src_, ": tokenizer.ggml.merges is absent or empty; a gpt2 vocabulary needs merges");
    const auto merges = file_merges();
    bool ignore_merges = false;
    switch (p->pre) {
      case BytePre::kLlama3:
        root["normalizer"] = nullptr;
        root["pre_tokenizer"] = split_then_byte_level(kLlama3Regex);
        ignore_merges = true;  // llama.cpp: LLAMA3 sets ignore_merges; so does Llama-3's tokenizer.json
        default_add_bos_ = true;
        break;
      case BytePre::kQwen2:
        root["normalizer"] = {{"type", "NFC"}};
        root["pre_tokenizer"] = split_then_byte_level(kQwen2Regex);
        break;
      case BytePre::kGpt2:
        root["normalizer"] = nullptr;
        root["pre_tokenizer"] = byte_level(true);
        break;
    }
    root["model"] = bpe_model(merges, false, ignore_merges);
    root["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    root["post_processor"] = {
        {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  }

  void build_sentencepiece(json& root) {
    std::vector<std::pair<int32_t, int32_t>> merges;
    if (!v_.merges.empty()) {
      merges = file_merges();
    } else {
      if (v_.scores.empty()) {
        fail(src_,
             ": a llama (SentencePiece) vocabulary needs tokenizer.ggml.scores or tokenizer.ggml.merges; both "
             "are absent");
      }
      merges = merges_from_scores(v_.tokens, v_.scores, ids_);
    }
    default_add_bos_ = true;  // llama.cpp and transformers add BOS to a llama vocabulary unless told not to
    const bool prefix = v_.add_space_prefix.value_or(true);
    const std::string meta(kMetaspace);
    switch (opt_.spm_prefix) {
      case SpmPrefixStyle::kLegacy: {
        json seq = json::array();
        if (prefix) seq.push_back({{"type", "Prepend"}, {"prepend", meta}});
        seq.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", meta}});
        root["normalizer"] = {{"type", "Sequence"}, {"normalizers", std::move(seq)}};
        root["pre_tokenizer"] = nullptr;
        break;
      }
      case SpmPrefixStyle::kFirst:
        root["normalizer"] = nullptr;
        root["pre_tokenizer"] = {{"type", "Metaspace"},
                                 {"replacement", meta},
                                 {"prepend_scheme", prefix ? "first" : "never"},
                                 {"split", false}};
        break;
    }
    root["model"] = bpe_model(merges, true, false);
    json dec = json::array({{{"type", "Replace"}, {"pattern", {{"String", meta}}}, {"content", " "}},
                            {{"type", "ByteFallback"}},
                            {{"type", "Fuse"}}});
    if (prefix) dec.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    root["decoder"] = {{"type", "Sequence"}, {"decoders", std::move(dec)}};
    root["post_processor"] = nullptr;
  }

  json added_tokens() const {
    json out = json::array();
    const auto unk = unk_id();
    for (size_t i = 0; i < v_.tokens.size(); ++i) {
      const GgufTokenType t = type_of(i);
      bool added = false, special = false;
      switch (t) {
        case GgufTokenType::kControl:
        case GgufTokenType::kUnknown: added = special = true; break;
        case GgufTokenType::kUserDefined: added = true; break;
        case GgufTokenType::kUndefined:
        case GgufTokenType::kNormal:
        case GgufTokenType::kUnused:
        case GgufTokenType::kByte: break;
      }
      // The unknown token is special in the models' tokenizer.json even when the file types it normal.
      if (unk && static_cast<int64_t>(i) == *unk && v_.model == "llama") added = special = true;
      if (!added) continue;
      out.push_back({{"id", i},
                     {"content", v_.tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", special}});
    }
    return out;
  }

  bool add_bos() const { return v_.add_bos_token.value_or(default_add_bos_); }
  bool add_eos() const { return v_.add_eos_token.value_or(false); }

  // TemplateProcessing "[BOS] $A [EOS]" as the models' files have it, after `base` (ByteLevel).
  json post_processor(const json& base) const {
    const bool bos = add_bos(), eos = add_eos();
    if (bos && !v_.bos_token_id)
      fail(src_, ": tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is absent");
    if (eos && !v_.eos_token_id)
      fail(src_, ": tokenizer.ggml.add_eos_token is set but tokenizer.ggml.eos_token_id is absent");
    if (!bos && !eos) return base;
    json single = json::array(), pair = json::array(), special = json::object();
    const auto tok = [&](int64_t id, int type_id) {
      const std::string& s = v_.tokens[static_cast<size_t>(id)];
      special[s] = {{"id", s}, {"ids", json::array({id})}, {"tokens", json::array({s})}};
      return json{{"SpecialToken", {{"id", s}, {"type_id", type_id}}}};
    };
    const auto seq = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
    for (int k = 0; k < 2; ++k) {
      json& out = k == 0 ? single : pair;
      if (bos) out.push_back(tok(*v_.bos_token_id, 0));
      out.push_back(seq("A", 0));
      if (eos) out.push_back(tok(*v_.eos_token_id, 0));
      if (k == 1) {
        if (bos) out.push_back(tok(*v_.bos_token_id, 1));
        out.push_back(seq("B", 1));
        if (eos) out.push_back(tok(*v_.eos_token_id, 1));
      }
    }
    json tp = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}};
    if (base.is_null()) return tp;
    return {{"type", "Sequence"}, {"processors", json::array({base, tp})}};
  }

  json config() const {
    const auto name = [&](const std::optional<int64_t>& id) -> json {
      if (!id) return nullptr;
      return v_.tokens[static_cast<size_t>(*id)];
    };
    json c = {{"bos_token", name(v_.bos_token_id)}, {"eos_token", name(v_.eos_token_id)},
              {"unk_token", name(unk_id())},        {"pad_token", name(v_.padding_token_id)},
              {"add_bos_token", add_bos()},         {"add_eos_token", add_eos()}};
    if (!v_.chat_template.empty()) c["chat_template"] = v_.chat_template;
    return c;
  }

  GgufVocab v_;  // a copy: check_arrays drops special ids outside the vocabulary
  std::string src_;
  GgufTokenizerOptions opt_;
  std::unordered_map<std::string_view, int32_t> ids_;  // token -> id (views into v_.tokens)
  bool default_add_bos_ = false;
};

}  // namespace

GgufTokenizerFiles gguf_tokenizer_files(const GgufVocab& vocab, const std::filesystem::path& source,
                                        const GgufTokenizerOptions& options) {
  return Builder(vocab, source, options).build();
}

Tokenizer tokenizer_from_gguf_vocab(const GgufVocab& vocab, const std::filesystem::path& source,
                                    const GgufTokenizerOptions& options) {
  const GgufTokenizerFiles files = gguf_tokenizer_files(vocab, source, options);
  return Tokenizer::from_json(files.tokenizer_json, files.tokenizer_config_json, source);
}

}  // namespace moe
