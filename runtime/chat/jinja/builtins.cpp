#include "runtime/chat/jinja/builtins.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "runtime/chat/jinja/interpreter.h"
#include "runtime/chat/jinja/json.h"
#include "runtime/chat/jinja/methods.h"
#include "runtime/core/error.h"

namespace moe::jinja {
namespace {

using Filter = Value (*)(const Value&, const CallArgs&);
using Test = bool (*)(const Value&, const CallArgs&);

Value arg_or(const CallArgs& a, std::size_t i, const std::string& name, const Value& dflt) {
  const Value* v = a.get(i, name);
  return v ? *v : dflt;
}

const Value& need_arg(const CallArgs& a, std::size_t i, const std::string& name, const char* who) {
  const Value* v = a.get(i, name);
  if (!v) fail(who, "() missing required argument '", name, "'");
  return *v;
}

// jinja2's make_attrgetter: "a.b.0" looks each part up with getitem (integers for digit parts).
Value attr_path(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return get_item(item, attribute);
  Value cur = item;
  const std::string& path = attribute.as_string();
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (cur.is_undefined()) return cur;
    cur = get_item(cur, digits ? Value::integer(std::strtoll(part.c_str(), nullptr, 10)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

CallArgs shift_args(const CallArgs& a, std::size_t n) {
  CallArgs out;
  for (std::size_t i = n; i < a.pos.size(); ++i) out.pos.push_back(a.pos[i]);
  out.kw = a.kw;
  return out;
}

Value select_impl(const Value& v, const CallArgs& a, bool by_attr, bool keep) {
  List out;
  std::size_t first_test_arg = by_attr ? 1 : 0;
  const Value* test = a.pos.size() > first_test_arg ? &a.pos[first_test_arg] : nullptr;
  CallArgs test_args = shift_args(a, first_test_arg + 1);
  for (const Value& item : iterate(v)) {
    Value x = by_attr ? attr_path(item, need_arg(a, 0, "attribute", "selectattr")) : item;
    bool ok = test ? apply_test(test->str(), x, test_args) : x.truthy();
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_trim(const Value& v, const CallArgs& a) {
  return Value::string(py_strip(v.str(), arg_or(a, 0, "chars", Value::none()), true, true));
}
Value f_length(const Value& v, const CallArgs&) {
  return Value::integer(py_len(v));
}
// transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(const Value& v, const CallArgs& a) {
  JsonOptions o;
  o.ensure_ascii = arg_or(a, 0, "ensure_ascii", Value::boolean(false)).truthy();
  const Value& ind = arg_or(a, 1, "indent", Value::none());
  if (!ind.is_none()) {
    if (ind.kind() != Value::Kind::kInt) fail("tojson: indent must be an integer");
    o.indent = std::max<std::int64_t>(0, ind.as_int());  // the output size is bounded in to_json
    o.item_sep.resize(1);  // ","  (assigning a literal here trips a GCC 12 -Wrestrict false positive)
  }
  const Value& seps = arg_or(a, 2, "separators", Value::none());
  if (!seps.is_none()) {
    if (!seps.is_list() || seps.as_list().size() != 2) fail("tojson: separators must be a (item, key) pair");
    o.item_sep = seps.as_list()[0].str();
    o.key_sep = seps.as_list()[1].str();
  }
  o.sort_keys = arg_or(a, 3, "sort_keys", Value::boolean(false)).truthy();
  return Value::string(to_json(v, o));
}
Value f_upper(const Value& v, const CallArgs&) {
  return Value::string(py_upper(v.str()));
}
Value f_lower(const Value& v, const CallArgs&) {
  return Value::string(py_lower(v.str()));
}
Value f_capitalize(const Value& v, const CallArgs&) {
  return Value::string(py_capitalize(v.str()));
}
Value f_title(const Value& v, const CallArgs&) {
  // jinja2's do_title: words begin after "-", whitespace, "(", "{", "[" or "<".
  std::string s = v.str(), out;
  bool begin = true;
  for (char c : s) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || c == '\t' || c == '\n' ||
               c == '\r' || c == '\f' || c == '\v';
    auto uc = static_cast<unsigned char>(c);
    out += sep ? c : static_cast<char>(begin ? std::toupper(uc) : std::tolower(uc));
    begin = sep;
  }
  return Value::string(out);
}
Value f_first(const Value& v, const CallArgs&) {
  List items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(const Value& v, const CallArgs&) {
  List items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_join(const Value& v, const CallArgs& a) {
  std::string sep = arg_or(a, 0, "d", Value::string("")).str(), out;
  const Value* attribute = a.get(1, "attribute");
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += (attribute ? attr_path(item, *attribute) : item).str();
    check_string_size(out.size(), "join");
  }
  return Value::string(out);
}
Value f_default(const Value& v, const CallArgs& a) {
  bool boolean = arg_or(a, 1, "boolean", Value::boolean(false)).truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return arg_or(a, 0, "default_value", Value::string(""));
  return v;
}
Value f_string(const Value& v, const CallArgs&) {
  return Value::string(v.str());
}
// int(d) for a finite double: truncated; NaN gives the default (Python's ValueError, which
// jinja2's int filter catches); outside 64 bits (Python would make a big int) is an error.
Value float_to_int(double d, const Value& dflt) {
  if (std::isnan(d)) return dflt;
  const double t = std::trunc(d);
  if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
    fail("int: ", py_float_repr(d), " does not fit in a 64-bit integer");
  return Value::integer(static_cast<std::int64_t>(t));
}

Value f_int(const Value& v, const CallArgs& a) {
  const Value& dflt = arg_or(a, 0, "default", Value::integer(0));
  if (v.kind() == Value::Kind::kFloat) return float_to_int(v.as_float(), dflt);
  if (v.is_number()) return Value::integer(v.as_int());
  if (!v.is_string()) return dflt;
  std::string s = py_strip(v.as_string(), Value::none(), true, true);
  int base = static_cast<int>(arg_or(a, 1, "base", Value::integer(10)).as_int());
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(s.c_str(), &end, base);
  if (!s.empty() && *end == '\0') {
    if (errno == ERANGE) fail("int: '", s, "' does not fit in a 64-bit integer");
    return Value::integer(i);
  }
  double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && *end == '\0' && std::isfinite(d)) return float_to_int(d, dflt);
  return dflt;
}
Value f_float(const Value& v, const CallArgs& a) {
  const Value& dflt = arg_or(a, 0, "default", Value::number(0.0));
  if (v.is_number()) return Value::number(v.as_float());
  if (!v.is_string()) return dflt;
  std::string s = py_strip(v.as_string(), Value::none(), true, true);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0' ? Value::number(d) : dflt;
}
Value f_list(const Value& v, const CallArgs&) {
  return Value::list(iterate(v));
}
Value f_items(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  List out;
  for (const auto& [k, x] : v.as_dict().items()) out.push_back(Value::list({Value::string(k), x}, true));
  return Value::list(std::move(out));
}
Value f_replace(const Value& v, const CallArgs& a) {
  const Value& count = arg_or(a, 2, "count", Value::none());
  return Value::string(py_replace(v.str(), need_arg(a, 0, "old", "replace").str(),
                                  need_arg(a, 1, "new", "replace").str(), count.is_none() ? -1 : count.as_int()));
}
Value f_selectattr(const Value& v, const CallArgs& a) {
  return select_impl(v, a, true, true);
}
Value f_rejectattr(const Value& v, const CallArgs& a) {
  return select_impl(v, a, true, false);
}
Value f_select(const Value& v, const CallArgs& a) {
  return select_impl(v, a, false, true);
}
Value f_reject(const Value& v, const CallArgs& a) {
  return select_impl(v, a, false, false);
}
Value f_map(const Value& v, const CallArgs& a) {
  List out;
  const Value* attribute = nullptr;
  for (const auto& [k, x] : a.kw) {
    if (k == "attribute") attribute = &x;
  }
  for (const Value& item : iterate(v)) {
    if (attribute) {
      Value x = attr_path(item, *attribute);
      const Value* dflt = nullptr;
      for (const auto& [k, d] : a.kw) {
        if (k == "default") dflt = &d;
      }
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    } else {
      if (a.pos.empty()) fail("map requires a filter argument");
      out.push_back(apply_filter(a.pos[0].str(), item, shift_args(a, 1)));
    }
  }
  return Value::list(std::move(out));
}
Value f_reverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    std::vector<char32_t> cps = utf8_decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(utf8_encode(cps));
  }
  List items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}
Value f_sort(const Value& v, const CallArgs& a) {
  bool reverse = arg_or(a, 0, "reverse", Value::boolean(false)).truthy();
  bool case_sensitive = arg_or(a, 1, "case_sensitive", Value::boolean(false)).truthy();
  const Value* attribute = a.get(2, "attribute");
  List items = iterate(v);
  auto key = [&](const Value& item) {
    Value k = attribute ? attr_path(item, *attribute) : item;
    return !case_sensitive && k.is_string() ? Value::string(py_lower(k.as_string())) : k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? py_compare(key(y), key(x)) < 0 : py_compare(key(x), key(y)) < 0;
  });
  return Value::list(std::move(items));
}
Value f_safe(const Value& v, const CallArgs&) {
  return v;
}
Value f_escape(const Value& v, const CallArgs&) {
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value::string(out);
}
Value f_abs(const Value& v, const CallArgs&) {
  if (!v.is_number()) fail("bad operand type for abs(): '", v.type_name(), "'");
  if (v.kind() == Value::Kind::kFloat) return Value::number(std::fabs(v.as_float()));
  if (v.as_int() == INT64_MIN) fail("integer overflow: abs(", v.as_int(), ") does not fit in 64 bits");
  return Value::integer(std::llabs(v.as_int()));
}

const std::map<std::string, Filter>& filters() {
  static const std::map<std::string, Filter> table = {
      {"trim", f_trim},
      {"length", f_length},
      {"count", f_length},
      {"tojson", f_tojson},
      {"upper", f_upper},
      {"lower", f_lower},
      {"title", f_title},
      {"capitalize", f_capitalize},
      {"first", f_first},
      {"last", f_last},
      {"join", f_join},
      {"default", f_default},
      {"d", f_default},
      {"string", f_string},
      {"int", f_int},
      {"float", f_float},
      {"list", f_list},
      {"items", f_items},
      {"replace", f_replace},
      {"selectattr", f_selectattr},
      {"rejectattr", f_rejectattr},
      {"select", f_select},
      {"reject", f_reject},
      {"map", f_map},
      {"reverse", f_reverse},
      {"sort", f_sort},
      {"safe", f_safe},
      {"escape", f_escape},
      {"e", f_escape},
      {"abs", f_abs},
  };
  return table;
}

bool t_defined(const Value& v, const CallArgs&) {
  return !v.is_undefined();
}
bool t_undefined(const Value& v, const CallArgs&) {
  return v.is_undefined();
}
bool t_none(const Value& v, const CallArgs&) {
  return v.is_none();
}
bool t_string(const Value& v, const CallArgs&) {
  return v.is_string();
}
bool t_mapping(const Value& v, const CallArgs&) {
  return v.is_dict();
}
bool t_iterable(const Value& v, const CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_number(const Value& v, const CallArgs&) {
  return v.is_number();
}
bool t_true(const Value& v, const CallArgs&) {
  return v.kind() == Value::Kind::kBool && v.as_bool();
}
bool t_false(const Value& v, const CallArgs&) {
  return v.kind() == Value::Kind::kBool && !v.as_bool();
}
bool t_boolean(const Value& v, const CallArgs&) {
  return v.kind() == Value::Kind::kBool;
}
bool t_integer(const Value& v, const CallArgs&) {
  return v.kind() == Value::Kind::kInt;
}
bool t_float(const Value& v, const CallArgs&) {
  return v.kind() == Value::Kind::kFloat;
}
bool t_callable(const Value& v, const CallArgs&) {
  return v.is_callable();
}
bool t_eq(const Value& v, const CallArgs& a) {
  return py_equal(v, need_arg(a, 0, "other", "eq"));
}
bool t_ne(const Value& v, const CallArgs& a) {
  return !py_equal(v, need_arg(a, 0, "other", "ne"));
}
bool t_lt(const Value& v, const CallArgs& a) {
  return py_compare(v, need_arg(a, 0, "other", "lt")) < 0;
}
bool t_le(const Value& v, const CallArgs& a) {
  return py_compare(v, need_arg(a, 0, "other", "le")) <= 0;
}
bool t_gt(const Value& v, const CallArgs& a) {
  return py_compare(v, need_arg(a, 0, "other", "gt")) > 0;
}
bool t_ge(const Value& v, const CallArgs& a) {
  return py_compare(v, need_arg(a, 0, "other", "ge")) >= 0;
}
std::int64_t int_of(const Value& v) {
  if (v.is_undefined()) fail(v.undefined_hint());
  if (!v.is_number()) fail("not all arguments converted during string formatting");
  return v.as_int();
}
bool t_odd(const Value& v, const CallArgs&) {
  return int_of(v) % 2 != 0;
}
bool t_even(const Value& v, const CallArgs&) {
  return int_of(v) % 2 == 0;
}
bool t_divisibleby(const Value& v, const CallArgs& a) {
  std::int64_t n = int_of(need_arg(a, 0, "num", "divisibleby"));
  if (n == 0) fail("integer division or modulo by zero");
  if (n == -1) return true;  // INT64_MIN % -1 traps
  return int_of(v) % n == 0;
}
bool t_sameas(const Value& v, const CallArgs& a) {
  const Value& o = need_arg(a, 0, "other", "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.is_none() || v.kind() == Value::Kind::kBool) return py_equal(v, o);
  if (v.is_list()) return &v.as_list() == &o.as_list();
  if (v.is_dict() || v.is_namespace()) return &v.as_dict() == &o.as_dict();
  return false;
}
bool t_in(const Value& v, const CallArgs& a) {
  const Value& seq = need_arg(a, 0, "seq", "in");
  if (seq.is_string()) return v.is_string() && seq.as_string().find(v.as_string()) != std::string::npos;
  if (seq.is_dict()) return v.is_string() && seq.as_dict().find(v.as_string()) != nullptr;
  for (const Value& x : iterate(seq)) {
    if (py_equal(x, v)) return true;
  }
  return false;
}
bool t_lower(const Value& v, const CallArgs&) {
  return v.is_string() && py_lower(v.as_string()) == v.as_string();
}
bool t_upper(const Value& v, const CallArgs&) {
  return v.is_string() && py_upper(v.as_string()) == v.as_string();
}

const std::map<std::string, Test>& tests() {
  static const std::map<std::string, Test> table = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"string", t_string},
      {"mapping", t_mapping},
      {"iterable", t_iterable},
      {"sequence", t_iterable},
      {"number", t_number},
      {"true", t_true},
      {"false", t_false},
      {"boolean", t_boolean},
      {"integer", t_integer},
      {"float", t_float},
      {"callable", t_callable},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"ne", t_ne},
      {"!=", t_ne},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"le", t_le},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {"ge", t_ge},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"sameas", t_sameas},
      {"in", t_in},
      {"lower", t_lower},
      {"upper", t_upper},
  };
  return table;
}

Value g_raise_exception(const CallArgs& a) {
  const Value* msg = a.get(0, "message");
  throw TemplateError(msg ? msg->str() : std::string());
}

Value g_strftime_now(const CallArgs& a) {
  const Value* fmt = a.get(0, "format");
  if (!fmt || !fmt->is_string()) fail("strftime_now() needs a format string");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  std::size_t n = std::strftime(buf, sizeof buf, fmt->as_string().c_str(), &tm);
  return Value::string(std::string(buf, n));
}

Value g_namespace(const CallArgs& a) {
  Dict attrs;
  for (const Value& p : a.pos) {
    if (!p.is_dict()) fail("namespace() positional argument must be a mapping");
    for (const auto& [k, v] : p.as_dict().items()) attrs.set(k, v);
  }
  for (const auto& [k, v] : a.kw) attrs.set(k, v);
  for (const auto& [k, v] : attrs.items()) {
    if (!k.empty() && k[0] == '_') fail("Chat templates cannot store underscore-prefixed attributes on a namespace");
  }
  return Value::namespace_(std::move(attrs));
}

Value g_range(const CallArgs& a) {
  std::int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = a.pos[0].as_int();
  } else if (a.pos.size() == 2 || a.pos.size() == 3) {
    start = a.pos[0].as_int();
    stop = a.pos[1].as_int();
    if (a.pos.size() == 3) step = a.pos[2].as_int();
  } else {
    fail("range expected 1 to 3 arguments, got ", a.pos.size());
  }
  for (const Value& p : a.pos) {
    if (p.kind() != Value::Kind::kInt && p.kind() != Value::Kind::kBool) fail("range() arguments must be integers");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  // The length in unsigned arithmetic (stop - start can overflow int64), as Python computes it.
  const auto ustart = static_cast<std::uint64_t>(start), ustop = static_cast<std::uint64_t>(stop);
  const std::uint64_t ustep = step > 0 ? static_cast<std::uint64_t>(step) : 0 - static_cast<std::uint64_t>(step);
  std::uint64_t len = 0;
  if (step > 0 && start < stop) len = (ustop - ustart - 1) / ustep + 1;
  if (step < 0 && start > stop) len = (ustart - ustop - 1) / ustep + 1;
  if (len > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  List out;
  out.reserve(static_cast<std::size_t>(len));
  for (std::uint64_t k = 0; k < len; ++k) {  // start + k * step stays within [start, stop)
    const std::uint64_t off = k * ustep;
    out.push_back(Value::integer(static_cast<std::int64_t>(step > 0 ? ustart + off : ustart - off)));
  }
  return Value::list(std::move(out));
}

Value g_dict(const CallArgs& a) {
  Dict d;
  for (const Value& p : a.pos) {
    if (!p.is_dict()) fail("dict() positional argument must be a mapping");
    for (const auto& [k, v] : p.as_dict().items()) d.set(k, v);
  }
  for (const auto& [k, v] : a.kw) d.set(k, v);
  return Value::dict(std::move(d));
}

}  // namespace

bool has_filter(const std::string& name) {
  return filters().count(name) != 0;
}
bool has_test(const std::string& name) {
  return tests().count(name) != 0;
}

Value apply_filter(const std::string& name, const Value& v, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail("unknown filter '", name, "'");
  return it->second(v, args);
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail("unknown test '", name, "'");
  return it->second(v, args);
}

Dict make_globals() {
  Dict g;
  g.set("raise_exception", Value::callable(g_raise_exception, "raise_exception"));
  g.set("strftime_now", Value::callable(g_strftime_now, "strftime_now"));
  g.set("namespace", Value::callable(g_namespace, "namespace"));
  g.set("range", Value::callable(g_range, "range"));
  g.set("dict", Value::callable(g_dict, "dict"));
  return g;
}

}  // namespace moe::jinja
