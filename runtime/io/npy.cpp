// NumPy .npy for float32 C-order arrays. Layout (numpy/lib/format.py): "\x93NUMPY", major,
// minor, header length (u16 LE in 1.0, u32 LE in 2.0), an ASCII Python dict literal
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and ended
// by '\n' so that the data starts at a multiple of 64, then the raw little-endian data.
// The writer reproduces numpy.save's bytes exactly (including its spare space after the dict).
#include "runtime/io/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/mapped_file.h"

namespace moe {
namespace {

static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlign = 64;                // numpy's ARRAY_ALIGN
constexpr size_t kGrowthAxisMaxDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS

// Element count of `shape`, or nullopt on a negative dim or when count * 4 bytes overflows.
std::optional<uint64_t> numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  if (n > std::numeric_limits<uint64_t>::max() / sizeof(float)) return std::nullopt;
  return n;
}

// Python's repr of a shape tuple: "()", "(3,)", "(2, 3)".
std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// The full preamble numpy.save writes for `shape`: magic, version, length, dict, padding.
std::string make_preamble(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  if (!shape.empty()) {  // numpy leaves room to grow the first axis in place
    const size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const size_t hlen = dict.size() + 1;  // + '\n'
  bool v2 = false;
  size_t pad = kAlign - (kMagic.size() + 2 + 2 + hlen) % kAlign;
  if (hlen + pad > 0xffff) {  // does not fit a u16: format 2.0, as numpy does
    v2 = true;
    pad = kAlign - (kMagic.size() + 2 + 4 + hlen) % kAlign;
  }
  const size_t total = hlen + pad;
  std::string out(kMagic);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) out += static_cast<char>((total >> (8 * i)) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

// Parser for the header dict numpy writes: a Python literal with string keys and values that
// are strings, True/False or tuples of non-negative integers. Errors start with `where`.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string where) : s_(text), where_(std::move(where)) {}

  struct Fields {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  Fields parse() {
    Fields f;
    expect('{');
    while (!peek_is('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        f.descr = string_literal();
      } else if (key == "fortran_order") {
        f.fortran_order = boolean();
      } else if (key == "shape") {
        f.shape = int_tuple();
      } else {
        bad(str_cat("unexpected key '", key, "'"));
      }
      if (!peek_is('}')) expect(',');
    }
    expect('}');
    skip_ws();
    if (pos_ != s_.size()) bad("unexpected text after the dict");
    return f;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(where_, ": malformed npy header (", what, " at offset ", pos_, "): ", s_);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  bool peek_is(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek_is(c)) bad(str_cat("expected '", c, "'"));
    ++pos_;
  }
  std::string string_literal() {
    skip_ws();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) bad("expected a string");
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) bad("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (s_.substr(pos_).starts_with(word)) {
        pos_ += std::string_view(word).size();
        return value;
      }
    }
    bad("expected True or False");
  }
  int64_t integer() {
    skip_ws();
    const size_t start = pos_;
    int64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v)) {
        bad("dimension too large");
      }
      ++pos_;
    }
    if (pos_ == start) bad("expected a non-negative integer");
    return v;
  }
  std::vector<int64_t> int_tuple() {
    std::vector<int64_t> out;
    expect('(');
    while (!peek_is(')')) {
      out.push_back(integer());
      if (!peek_is(')')) expect(',');
    }
    expect(')');
    return out;
  }

  std::string_view s_;
  std::string where_;
  size_t pos_ = 0;
};

uint64_t read_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

// Checks magic and version; returns the offset of the header dict and its length.
std::pair<size_t, size_t> read_preamble(const MappedFile& f, const std::string& where) {
  const uint8_t* p = f.data();
  MOE_CHECK(f.size() >= 10, where, ": file is ", f.size(), " bytes, too short for an npy preamble");
  MOE_CHECK(std::memcmp(p, kMagic.data(), kMagic.size()) == 0, where, ": not an npy file (magic is not \\x93NUMPY)");
  const int major = p[6];
  const int minor = p[7];
  MOE_CHECK((major == 1 || major == 2) && minor == 0, where, ": npy format version ", major, ".", minor,
            " not supported (only 1.0 and 2.0)");
  const size_t len_bytes = major == 1 ? 2 : 4;
  MOE_CHECK(f.size() >= 8 + len_bytes, where, ": file is ", f.size(), " bytes, too short for an npy preamble");
  const uint64_t hlen = read_le(p + 8, len_bytes);
  const size_t start = 8 + len_bytes;
  MOE_CHECK(hlen <= f.size() - start, where, ": npy header length ", hlen, " runs past the end of the file (", f.size(),
            " bytes)");
  return {start, static_cast<size_t>(hlen)};
}

}  // namespace

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data) {
  const auto numel = numel_of(shape);
  MOE_CHECK(numel.has_value(), path.string(), ": cannot write shape ", shape_repr(shape),
            " (negative dim or too many elements)");
  MOE_CHECK(data != nullptr || *numel == 0, path.string(), ": no data for shape ", shape_repr(shape));
  const std::string preamble = make_preamble(shape);
  AtomicFile out(path);
  out.write(preamble.data(), preamble.size());
  if (*numel > 0) out.write(data, static_cast<size_t>(*numel * sizeof(float)));
  out.commit();
}

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string where = path.string();
  const MappedFile f = MappedFile::open(path);
  const auto [start, hlen] = read_preamble(f, where);
  const std::string_view text(reinterpret_cast<const char*>(f.data() + start), hlen);
  const HeaderParser::Fields h = HeaderParser(text, where).parse();
  MOE_CHECK(h.descr && h.fortran_order && h.shape, where,
            ": npy header lacks one of 'descr', 'fortran_order', 'shape': ", text);
  MOE_CHECK(*h.descr == "<f4", where, ": dtype '", *h.descr, "' not supported (only '<f4')");
  MOE_CHECK(!*h.fortran_order, where, ": fortran_order True not supported (only C order)");
  const auto numel = numel_of(*h.shape);
  MOE_CHECK(numel.has_value(), where, ": shape ", shape_repr(*h.shape), " has too many elements");

  const uint64_t data_start = start + hlen;
  const uint64_t have = f.size() - data_start;
  const uint64_t need = *numel * sizeof(float);
  MOE_CHECK(have >= need, where, ": truncated: data is ", have, " bytes but shape ", shape_repr(*h.shape),
            " of float32 needs ", need);
  MOE_CHECK(have == need, where, ": ", have - need, " trailing bytes after the data of shape ", shape_repr(*h.shape));

  NpyArray a;
  a.shape = *h.shape;
  a.data.resize(static_cast<size_t>(*numel));
  if (need > 0) std::memcpy(a.data.data(), f.data() + data_start, static_cast<size_t>(need));
  return a;
}

}  // namespace moe
