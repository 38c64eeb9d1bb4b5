#include "runtime/chat/jinja/methods.h"

#include <algorithm>
#include <set>

#include "runtime/core/error.h"

namespace moe::jinja {
namespace {

const std::string& need_string(const Value* v, const char* what) {
  if (!v || !v->is_string()) fail(what, " must be a string");
  return v->as_string();
}

std::int64_t opt_int(const Value* v, std::int64_t dflt) {
  if (!v || v->is_none()) return dflt;
  if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) fail("expected an integer argument");
  return v->as_int();
}

List split_whitespace(const std::string& s, std::int64_t maxsplit, bool from_right) {
  std::vector<char32_t> cps = utf8_decode(s);
  std::vector<std::string> parts;
  if (!from_right) {
    std::size_t i = 0;
    while (true) {
      while (i < cps.size() && py_isspace(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        std::size_t end = cps.size();
        while (end > i && py_isspace(cps[end - 1])) --end;
        parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(i),
                                                          cps.begin() + static_cast<std::ptrdiff_t>(end))));
        break;
      }
      std::size_t j = i;
      while (j < cps.size() && !py_isspace(cps[j])) ++j;
      parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(i),
                                                        cps.begin() + static_cast<std::ptrdiff_t>(j))));
      i = j;
    }
  } else {
    std::size_t i = cps.size();
    while (true) {
      while (i > 0 && py_isspace(cps[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        std::size_t start = 0;
        while (start < i && py_isspace(cps[start])) ++start;
        parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(start),
                                                          cps.begin() + static_cast<std::ptrdiff_t>(i))));
        break;
      }
      std::size_t j = i;
      while (j > 0 && !py_isspace(cps[j - 1])) --j;
      parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(j),
                                                        cps.begin() + static_cast<std::ptrdiff_t>(i))));
      i = j;
    }
    std::reverse(parts.begin(), parts.end());
  }
  List out;
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

List split_sep(const std::string& s, const std::string& sep, std::int64_t maxsplit, bool from_right) {
  if (sep.empty()) fail("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    std::size_t start = 0;
    while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
      std::size_t k = s.find(sep, start);
      if (k == std::string::npos) break;
      parts.push_back(s.substr(start, k - start));
      start = k + sep.size();
    }
    parts.push_back(s.substr(start));
  } else {
    std::size_t end = s.size();
    while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
      if (end < sep.size()) break;
      std::size_t k = s.rfind(sep, end - sep.size());
      if (k == std::string::npos) break;
      parts.push_back(s.substr(k + sep.size(), end - k - sep.size()));
      end = k;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  List out;
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

bool affix_match(const std::string& s, const Value* arg, bool prefix) {
  if (!arg) fail(prefix ? "startswith" : "endswith", "() takes at least 1 argument (0 given)");
  List options = arg->is_list() ? arg->as_list() : List{*arg};
  for (const Value& o : options) {
    const std::string& a = need_string(&o, prefix ? "startswith argument" : "endswith argument");
    if (a.size() <= s.size() &&
        (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0)) {
      return true;
    }
  }
  return false;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha)
      c = static_cast<char>(prev_cased ? std::tolower(static_cast<unsigned char>(c))
                                       : std::toupper(static_cast<unsigned char>(c)));
    prev_cased = alpha;
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  auto bind = [&](auto fn) { return Value::callable([s, fn](const CallArgs& a) { return fn(s, a); }, name); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool left = name != "rstrip", right = name != "lstrip";
    return bind([left, right](const std::string& str, const CallArgs& a) {
      const Value* chars = a.get(0, "chars");
      return Value::string(py_strip(str, chars ? *chars : Value::none(), left, right));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return bind([right](const std::string& str, const CallArgs& a) {
      const Value* sep = a.get(0, "sep");
      std::int64_t maxsplit = opt_int(a.get(1, "maxsplit"), -1);
      if (!sep || sep->is_none()) return Value::list(split_whitespace(str, maxsplit, right));
      return Value::list(split_sep(str, need_string(sep, "separator"), maxsplit, right));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool prefix = name == "startswith";
    return bind([prefix](const std::string& str, const CallArgs& a) {
      return Value::boolean(affix_match(str, a.get(0, "prefix"), prefix));
    });
  }
  if (name == "replace") {
    return bind([](const std::string& str, const CallArgs& a) {
      return Value::string(py_replace(str, need_string(a.get(0, "old"), "replace() old"),
                                      need_string(a.get(1, "new"), "replace() new"), opt_int(a.get(2, "count"), -1)));
    });
  }
  if (name == "upper")
    return bind([](const std::string& str, const CallArgs&) { return Value::string(py_upper(str)); });
  if (name == "lower")
    return bind([](const std::string& str, const CallArgs&) { return Value::string(py_lower(str)); });
  if (name == "title")
    return bind([](const std::string& str, const CallArgs&) { return Value::string(py_title(str)); });
  if (name == "capitalize") {
    return bind([](const std::string& str, const CallArgs&) { return Value::string(py_capitalize(str)); });
  }
  if (name == "find" || name == "count") {
    bool find = name == "find";
    return bind([find](const std::string& str, const CallArgs& a) {
      const std::string& sub = need_string(a.get(0, "sub"), "substring");
      if (find) {
        std::size_t k = str.find(sub);
        if (k == std::string::npos) return Value::integer(-1);
        return Value::integer(static_cast<std::int64_t>(utf8_decode(str.substr(0, k)).size()));
      }
      if (sub.empty()) return Value::integer(static_cast<std::int64_t>(utf8_decode(str).size()) + 1);
      std::int64_t n = 0;
      for (std::size_t k = str.find(sub); k != std::string::npos; k = str.find(sub, k + sub.size())) ++n;
      return Value::integer(n);
    });
  }
  if (name == "join") {
    return bind([](const std::string& str, const CallArgs& a) {
      const Value* seq = a.get(0, "iterable");
      if (!seq) fail("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const Value& v : iterate(*seq)) {
        if (!v.is_string()) fail("sequence item: expected str instance, ", v.type_name(), " found");
        if (!first) out += str;
        first = false;
        out += v.as_string();
        check_string_size(out.size(), "join");
      }
      return Value::string(out);
    });
  }
  return Value();
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::callable(
        [d, name](const CallArgs&) {
          List out;
          for (const auto& [k, v] : d.as_dict().items()) {
            if (name == "items") {
              out.push_back(Value::list({Value::string(k), v}, true));
            } else {
              out.push_back(name == "keys" ? Value::string(k) : v);
            }
          }
          return Value::list(std::move(out));
        },
        name, d.depth());
  }
  if (name == "get") {
    return Value::callable(
        [d](const CallArgs& a) {
          const Value* key = a.get(0, "key");
          if (!key) fail("get expected at least 1 argument, got 0");
          const Value* found = key->is_string() ? d.as_dict().find(key->as_string()) : nullptr;
          if (found) return *found;
          const Value* dflt = a.get(1, "default");
          return dflt ? *dflt : Value::none();
        },
        name, d.depth());
  }
  return Value();
}

const std::set<std::string> kListMutators = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
const std::set<std::string> kDictMutators = {"pop", "popitem", "setdefault", "update", "clear"};

Value unsafe(const Value& obj, const std::string& name) {
  std::string msg = str_cat("access to attribute '", name, "' of '", obj.type_name(), "' is unsafe.");
  return Value::callable([msg](const CallArgs&) -> Value { fail(msg); }, name);
}

Value missing(const Value& obj, const std::string& shown) {
  if (obj.is_none()) return Value::undefined(str_cat("'None' has no attribute ", shown));
  return Value::undefined(str_cat("'", obj.type_name(), "' has no attribute ", shown));
}

}  // namespace

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::vector<char32_t> cps = utf8_decode(s);
  std::vector<char32_t> set;
  bool custom = !chars.is_none() && !chars.is_undefined();
  if (custom) {
    if (!chars.is_string()) fail("strip arg must be None or str");
    set = utf8_decode(chars.as_string());
  }
  auto strip_it = [&](char32_t c) {
    return custom ? std::find(set.begin(), set.end(), c) != set.end() : py_isspace(c);
  };
  std::size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  return utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(b),
                                           cps.begin() + static_cast<std::ptrdiff_t>(e)));
}

std::string py_upper(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string py_lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out = py_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, std::int64_t count) {
  std::string out;
  std::int64_t n = 0;
  if (old.empty()) {
    std::vector<char32_t> cps = utf8_decode(s);
    for (char32_t c : cps) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      out += utf8_encode(c);
      check_string_size(out.size(), "replace");
    }
    if (count < 0 || n < count) out += repl;
    return out;
  }
  std::size_t start = 0;
  while (count < 0 || n < count) {
    std::size_t k = s.find(old, start);
    if (k == std::string::npos) break;
    out += s.substr(start, k - start) + repl;
    check_string_size(out.size(), "replace");
    start = k + old.size();
    ++n;
  }
  return out + s.substr(start);
}

Value get_attr(const Value& obj, const std::string& name) {
  std::string shown = str_cat('\'', name, '\'');
  if (obj.is_string()) {
    Value m = string_method(obj.as_string(), name);
    return m.is_undefined() ? missing(obj, shown) : m;
  }
  if (obj.is_dict()) {
    if (kDictMutators.count(name)) return unsafe(obj, name);
    Value m = dict_method(obj, name);
    if (!m.is_undefined()) return m;
    const Value* v = obj.as_dict().find(name);
    return v ? *v : missing(obj, shown);
  }
  if (obj.is_namespace()) {
    const Value* v = obj.as_dict().find(name);
    return v ? *v : missing(obj, shown);
  }
  if (obj.is_list() && kListMutators.count(name)) return unsafe(obj, name);
  return missing(obj, shown);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_list() || obj.is_string()) {
    if (key.kind() == Value::Kind::kInt || key.kind() == Value::Kind::kBool) {
      std::int64_t i = key.as_int();
      if (obj.is_list()) {
        auto n = static_cast<std::int64_t>(obj.as_list().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.as_list()[static_cast<std::size_t>(i)];
      } else {
        std::vector<char32_t> cps = utf8_decode(obj.as_string());
        auto n = static_cast<std::int64_t>(cps.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value::string(utf8_encode(cps[static_cast<std::size_t>(i)]));
      }
      return missing(obj, key.repr());
    }
  }
  if (obj.is_dict() && key.is_string()) {
    const Value* v = obj.as_dict().find(key.as_string());
    if (v) return *v;
  }
  if (key.is_string()) {
    Value m = get_attr(obj, key.as_string());
    if (!m.is_undefined() && !(obj.is_dict() && !m.is_callable())) return m;
  }
  return missing(obj, key.repr());
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (!obj.is_list() && !obj.is_string()) fail("'", obj.type_name(), "' is not subscriptable");
  std::int64_t st = opt_int(&step, 1);
  if (st == 0) fail("slice step cannot be zero");
  std::vector<char32_t> cps;
  std::int64_t n = 0;
  if (obj.is_string()) {
    cps = utf8_decode(obj.as_string());
    n = static_cast<std::int64_t>(cps.size());
  } else {
    n = static_cast<std::int64_t>(obj.as_list().size());
  }
  auto clamp = [&](const Value& v, std::int64_t dflt) {
    if (v.is_none()) return dflt;
    std::int64_t i = opt_int(&v, 0);
    if (i < 0) i += n;
    if (st > 0) return std::clamp<std::int64_t>(i, 0, n);
    return std::clamp<std::int64_t>(i, -1, n - 1);
  };
  std::int64_t b = clamp(start, st > 0 ? 0 : n - 1);
  std::int64_t e = clamp(stop, st > 0 ? n : -1);
  // Count the elements first (i += st could overflow for a huge step); b and e lie in [-1, n].
  const std::uint64_t ust = st > 0 ? static_cast<std::uint64_t>(st) : 0 - static_cast<std::uint64_t>(st);
  std::uint64_t count = 0;
  if (st > 0 && b < e) count = (static_cast<std::uint64_t>(e - b) - 1) / ust + 1;
  if (st < 0 && b > e) count = (static_cast<std::uint64_t>(b - e) - 1) / ust + 1;
  List items;
  std::vector<char32_t> chars;
  for (std::uint64_t k = 0; k < count; ++k) {
    const std::int64_t i = st > 0 ? b + static_cast<std::int64_t>(k * ust) : b - static_cast<std::int64_t>(k * ust);
    if (obj.is_string()) {
      chars.push_back(cps[static_cast<std::size_t>(i)]);
    } else {
      items.push_back(obj.as_list()[static_cast<std::size_t>(i)]);
    }
  }
  if (obj.is_string()) return Value::string(utf8_encode(chars));
  return Value::list(std::move(items), obj.is_tuple());
}

}  // namespace moe::jinja
