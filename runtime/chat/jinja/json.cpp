#include "runtime/chat/jinja/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "runtime/core/error.h"

namespace moe::jinja {
namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  auto hex4 = [&](unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04x", v);
    out += buf;
  };
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7e && c < 0x10000)) {
          hex4(static_cast<unsigned>(c));
        } else if (ensure_ascii && c >= 0x10000) {
          unsigned v = static_cast<unsigned>(c) - 0x10000;
          hex4(0xd800 + (v >> 10));
          hex4(0xdc00 + (v & 0x3ff));
        } else {
          out += utf8_encode(c);
        }
    }
  }
  out += '"';
}

void json_dump(std::string& out, const Value& v, const JsonOptions& o, int level) {
  if (level > kMaxValueDepth) fail("tojson: value nested deeper than ", kMaxValueDepth, " levels");
  check_string_size(out.size(), "tojson output");
  auto newline = [&](int lvl) {
    if (o.indent < 0) return;
    const auto indent = static_cast<std::uint64_t>(o.indent), depth = static_cast<std::uint64_t>(lvl);
    if (depth != 0 && indent > kMaxStringBytes / depth)  // checked before multiplying: cannot wrap
      fail("tojson output would be more than the limit of ", kMaxStringBytes, " bytes (indent ", o.indent, ")");
    const std::uint64_t spaces = indent * depth;
    if (spaces + out.size() + 1 > kMaxStringBytes)
      fail("tojson output would be more than the limit of ", kMaxStringBytes, " bytes (indent ", o.indent, ")");
    out += '\n';
    out.append(static_cast<std::size_t>(spaces), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      double d = v.as_float();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : py_float_repr(d);
      return;
    }
    case Value::Kind::kString: json_string(out, v.as_string(), o.ensure_ascii); return;
    case Value::Kind::kList: {
      if (v.as_list().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < v.as_list().size(); ++i) {
        if (i) out += o.item_sep;
        newline(level + 1);
        json_dump(out, v.as_list()[i], o, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      if (v.as_dict().size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.as_dict().items()) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_sep;
        newline(level + 1);
        json_string(out, items[i]->first, o.ensure_ascii);
        out += o.key_sep;
        json_dump(out, items[i]->second, o, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    case Value::Kind::kUndefined: fail("Object of type Undefined is not JSON serializable");
    case Value::Kind::kNamespace: fail("Object of type TemplateNamespace is not JSON serializable");
    case Value::Kind::kCallable: fail("Object of type builtin_function_or_method is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_dump(out, v, options, 0);
  check_string_size(out.size(), "tojson output");
  return out;
}

}  // namespace moe::jinja
