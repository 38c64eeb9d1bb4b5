// UTF-8 validation of names read from model files (safetensors headers, GGUF keys and tensor
// names).
#pragma once

#include <cstddef>
#include <string_view>

namespace moe {

// Offset of the first byte of an ill-formed UTF-8 sequence in `s`, or npos when `s` is valid
// UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t find_invalid_utf8(std::string_view s);

}  // namespace moe
