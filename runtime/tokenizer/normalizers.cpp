#include "runtime/tokenizer/normalizers.h"

#include <utf8proc.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/utf8.h"

namespace moe::tok {
namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& text) const override {
    bool ascii = true;
    for (char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
    if (ascii || text.empty()) return;
    utf8proc_uint8_t* out = nullptr;
    const auto n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &out, static_cast<utf8proc_option_t>(options_));
    if (n < 0) fail("normalizer: utf8proc failed: ", utf8proc_errmsg(n));
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string s) : s_(std::move(s)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, s_);
  }

 private:
  std::string s_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = lowercase(text); }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!is_whitespace(next_cp(text, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        size_t i = s;
        if (!is_whitespace(next_cp(text, i))) break;
        e = s;
      }
    }
    text = text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  void normalize(std::string& text) const override {
    for (const auto& n : items_) n->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

std::unique_ptr<Normalizer> make_normalizer_at(const nlohmann::json& j, const std::string& where, int depth) {
  if (j.is_null()) return nullptr;
  const std::string type = get_type(j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD")
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(get_string(j, "prepend", w));
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(Pattern::from_json(j, w), get_string(j, "content", w));
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(get_bool(j, "strip_left", true, w), get_bool(j, "strip_right", true, w));
  }
  if (type == "Sequence") {
    check_sequence_nesting(depth + 1, w);
    const auto& items = get_array(j, "normalizers", w);
    std::vector<std::unique_ptr<Normalizer>> out;
    for (size_t i = 0; i < items.size(); ++i) {
      auto n = make_normalizer_at(items[i], str_cat(where, ".normalizers[", i, "]"), depth + 1);
      if (n) out.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(out));
  }
  fail(where, ": normalizer type '", type, "' is not supported");
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where) {
  return make_normalizer_at(j, where, 0);
}

}  // namespace moe::tok
