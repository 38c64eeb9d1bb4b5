#include "runtime/tokenizer/decoders.h"

#include <utility>

#include "runtime/core/error.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/utf8.h"

namespace moe::tok {
namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      if (!byte_level_decode(t, bytes)) bytes += t;
    }
    tokens.assign(1, from_utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : rep_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (pos < t.size()) {
        if (t.compare(pos, rep_.size(), rep_) == 0) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          pos += rep_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  std::string rep_;
  bool strip_first_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xNN>" -> byte (u8::from_str_radix(&token[3..5], 16), which also takes "+N").
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  if (t[3] == '+' && lo >= 0) return lo;
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    const auto flush = [&] {
      if (bytes.empty()) return;
      if (is_valid_utf8(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < bytes.size(); ++k) out.emplace_back(kReplacementChar);
      }
      bytes.clear();
    };
    for (auto& t : tokens) {
      const int b = parse_byte_token(t);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<size_t> bounds;  // byte offset of each char, then the end
      std::vector<char32_t> chars;
      size_t i = 0;
      while (i < t.size()) {
        bounds.push_back(i);
        chars.push_back(next_cp(t, i));
      }
      bounds.push_back(t.size());
      size_t start_cut = 0;
      for (size_t k = 0; k < start_ && k < chars.size(); ++k) {
        if (chars[k] != content_) break;
        start_cut = k + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t k = 0; k < stop_ && k < chars.size(); ++k) {
        const size_t index = chars.size() - k - 1;
        if (chars[index] != content_) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      t = t.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

std::unique_ptr<Decoder> make_decoder_at(const nlohmann::json& j, const std::string& where, int depth) {
  if (j.is_null()) return nullptr;
  const std::string type = get_type(j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    bool prepend = get_bool(j, "add_prefix_space", true, w);
    if (j.contains("prepend_scheme")) prepend = get_string(j, "prepend_scheme", w) != "never";
    return std::make_unique<MetaspaceDecoder>(get_string_or(j, "replacement", "\xE2\x96\x81", w), prepend);
  }
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(Pattern::from_json(j, w), get_string(j, "content", w));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const std::string c = get_string(j, "content", w);
    size_t i = 0;
    MOE_CHECK(!c.empty() && (next_cp(c, i), i == c.size()), w, ": content must be one character");
    i = 0;
    const int64_t start = get_int(j, "start", 0, w), stop = get_int(j, "stop", 0, w);
    MOE_CHECK(start >= 0 && stop >= 0, w, ": start/stop must not be negative");
    return std::make_unique<StripDecoder>(next_cp(c, i), static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Sequence") {
    check_sequence_nesting(depth + 1, w);
    const auto& items = get_array(j, "decoders", w);
    std::vector<std::unique_ptr<Decoder>> out;
    for (size_t i = 0; i < items.size(); ++i) {
      auto d = make_decoder_at(items[i], str_cat(where, ".decoders[", i, "]"), depth + 1);
      if (d) out.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(out));
  }
  fail(where, ": decoder type '", type, "' is not supported");
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& where) {
  return make_decoder_at(j, where, 0);
}

}  // namespace moe::tok
