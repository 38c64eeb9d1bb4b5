// json.dumps as transformers' tojson filter calls it: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False) by default, floats as Python writes them.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/chat/jinja/value.h"

namespace moe::jinja {

struct JsonOptions {
  std::int64_t indent = -1;  // <0: None (one line)
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_sep = ", ";  // Python's default; "," when indent is given
  std::string key_sep = ": ";
};

// Throws moe::Error for undefined, namespaces and callables (not JSON serializable), for values
// nested deeper than kMaxValueDepth and for output above kMaxStringBytes.
std::string to_json(const Value& v, const JsonOptions& options);

}  // namespace moe::jinja
