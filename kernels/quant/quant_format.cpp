// Names of the group-wise quantization formats: "q<bits>g<group>" (see quant_format.h).
#include "kernels/quant/quant_format.h"

#include <string>
#include <utility>

namespace moe {

namespace {

bool supported_group(int32_t g) {
  return g == 16 || g == 32 || g == 64 || g == 128 || g == 256;
}

constexpr std::pair<QuantType, std::string_view> kGgmlNames[] = {
    {QuantType::kGgmlQ4_0, "Q4_0"}, {QuantType::kGgmlQ4_1, "Q4_1"},     {QuantType::kGgmlQ5_0, "Q5_0"},
    {QuantType::kGgmlQ5_1, "Q5_1"}, {QuantType::kGgmlQ8_0, "Q8_0"},     {QuantType::kGgmlQ2_K, "Q2_K"},
    {QuantType::kGgmlQ3_K, "Q3_K"}, {QuantType::kGgmlQ4_K, "Q4_K"},     {QuantType::kGgmlQ5_K, "Q5_K"},
    {QuantType::kGgmlQ6_K, "Q6_K"}, {QuantType::kGgmlIQ4_XS, "IQ4_XS"},
};

}  // namespace

// "q4g64": the canonical spelling, always with the group; "Q4_K" for a ggml type.
std::string quant_format_name(QuantFormat f) {
  if (is_ggml(f.type))
    for (const auto& [t, name] : kGgmlNames)
      if (t == f.type) return std::string(name);
  std::string name = "q";
  name += std::to_string(quant_bits(f.type));
  name += 'g';
  name += std::to_string(f.group_size);
  return name;
}

// Accepts exactly "q<b>" and "q<b>g<g>" with b in {8, 4, 3, 2} and g a supported group size
// written without sign or leading zeros; nullopt for anything else.
std::optional<QuantFormat> parse_quant_format(std::string_view s) {
  for (const auto& [t, name] : kGgmlNames)
    if (s == name) return QuantFormat{t, ggml_block(t).elems};
  if (s.size() < 2 || s[0] != 'q') return std::nullopt;
  QuantFormat f;
  switch (s[1]) {
    case '8': f.type = QuantType::kQ8; break;
    case '4': f.type = QuantType::kQ4; break;
    case '3': f.type = QuantType::kQ3; break;
    case '2': f.type = QuantType::kQ2; break;
    default: return std::nullopt;
  }
  f.group_size = f.type == QuantType::kQ2 ? 16 : 64;
  if (s.size() == 2) return f;
  if (s[2] != 'g') return std::nullopt;
  const std::string_view digits = s.substr(3);
  if (digits.empty() || digits.size() > 3 || digits[0] == '0') return std::nullopt;
  int32_t g = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    g = g * 10 + (c - '0');
  }
  if (!supported_group(g)) return std::nullopt;
  f.group_size = g;
  return f;
}

}  // namespace moe
