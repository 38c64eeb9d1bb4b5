#include "runtime/chat/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/core/error.h"

namespace moe::jinja {

void check_string_size(std::size_t n, const char* what) {
  if (n > kMaxStringBytes) fail(what, " would be ", n, " bytes, more than the limit of ", kMaxStringBytes, " bytes");
}

namespace {

thread_local NamespaceArena* t_arena = nullptr;

// 1 + the deepest of `items`; throws past kMaxValueDepth.
template <class It, class Get>
int container_depth(It begin, It end, Get get) {
  int d = 0;
  for (It it = begin; it != end; ++it) d = std::max(d, get(*it).depth());
  if (d + 1 > kMaxValueDepth) fail("value nested deeper than ", kMaxValueDepth, " levels");
  return d + 1;
}

}  // namespace

NamespaceArena::NamespaceArena() : outer_(t_arena) {
  t_arena = this;
}

NamespaceArena::~NamespaceArena() {
  t_arena = outer_;
  // Every namespace is still held here, so emptying one destroys no other namespace: nothing
  // recurses, and the cycles are gone before the last references are dropped.
  for (const auto& d : owned_) d->take_items();
}

void NamespaceArena::adopt(const std::shared_ptr<Dict>& d) {
  if (!t_arena) return;
  if (t_arena->owned_.size() >= kMaxNamespaces) fail("more than ", kMaxNamespaces, " namespaces in one render");
  t_arena->owned_.push_back(d);
}

std::vector<std::pair<std::string, Value>> Dict::take_items() {
  std::vector<std::pair<std::string, Value>> out;
  out.swap(items_);
  return out;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& [k, old] : items_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items_.emplace_back(key, std::move(v));
}

const Value* CallArgs::get(std::size_t i, const std::string& name) const {
  if (i < pos.size()) return &pos[i];
  for (const auto& [k, v] : kw) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::move(s);
  return v;
}
Value Value::list(List items, bool tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.tuple_ = tuple;
  if (items.size() > kMaxListItems)
    fail("a list of ", items.size(), " items is more than the limit of ", kMaxListItems);
  v.depth_ = container_depth(items.begin(), items.end(), [](const Value& x) -> const Value& { return x; });
  v.list_ = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::dict(Dict d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.depth_ = container_depth(d.items().begin(), d.items().end(),
                             [](const std::pair<std::string, Value>& kv) -> const Value& { return kv.second; });
  v.dict_ = std::make_shared<Dict>(std::move(d));
  return v;
}
Value Value::namespace_(Dict attrs) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.depth_ = 1;  // owned by the arena: a chain of namespaces is taken apart from there
  v.dict_ = std::make_shared<Dict>(std::move(attrs));
  NamespaceArena::adopt(v.dict_);
  return v;
}
Value Value::callable(Function f, std::string name, int depth) {
  Value v;
  v.kind_ = Kind::kCallable;
  if (depth + 1 > kMaxValueDepth) fail("value nested deeper than ", kMaxValueDepth, " levels");
  v.depth_ = depth == 0 ? 0 : depth + 1;
  v.fn_ = std::make_shared<Function>(std::move(f));
  v.s_ = std::move(name);
  return v;
}

namespace {
template <class Json>
Value value_from_json(const Json& j, int depth = 0) {
  if (depth > kMaxValueDepth) fail("chat template context: JSON nested deeper than ", kMaxValueDepth, " levels");
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.template get<bool>());
    case Json::value_t::number_integer: return Value::integer(j.template get<std::int64_t>());
    case Json::value_t::number_unsigned:
      return Value::integer(static_cast<std::int64_t>(j.template get<std::uint64_t>()));
    case Json::value_t::number_float: return Value::number(j.template get<double>());
    case Json::value_t::string: return Value::string(j.template get<std::string>());
    case Json::value_t::array: {
      List items;
      for (const auto& e : j) items.push_back(value_from_json(e, depth + 1));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), value_from_json(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    case Json::value_t::binary:
    case Json::value_t::discarded: break;
  }
  fail("chat template context: unsupported JSON value");
}

}  // namespace

Value Value::from_json(const nlohmann::json& j) {
  return value_from_json(j);
}
Value Value::from_json(const nlohmann::ordered_json& j) {
  return value_from_json(j);
}

std::int64_t Value::as_int() const {
  return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_;
}
double Value::as_float() const {
  return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0;
    case Kind::kString: return !s_.empty();
    case Kind::kList: return !list_->empty();
    case Kind::kDict: return dict_->size() != 0;
    case Kind::kNamespace:
    case Kind::kCallable: return true;
  }
  return false;
}

std::string Value::str() const {
  if (kind_ == Kind::kUndefined) return "";
  if (kind_ == Kind::kString) return s_;
  return repr();
}

namespace {

// Python's repr: a container already being written (a namespace holding itself) prints as
// {...} / [...], as reprlib.recursive_repr does; depth and size are bounded.
void repr_into(const Value& v, std::string& out, std::vector<const void*>& open, int depth) {
  if (depth > kMaxValueDepth) fail("repr: value nested deeper than ", kMaxValueDepth, " levels");
  check_string_size(out.size(), "repr of a value");
  switch (v.kind()) {
    case Value::Kind::kList: {
      const List& items = v.as_list();
      const bool tuple = v.is_tuple();
      if (std::find(open.begin(), open.end(), &items) != open.end()) {
        out += tuple ? "(...)" : "[...]";
        return;
      }
      open.push_back(&items);
      out += tuple ? "(" : "[";
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        repr_into(items[i], out, open, depth + 1);
      }
      if (tuple && items.size() == 1) out += ",";
      out += tuple ? ")" : "]";
      open.pop_back();
      return;
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      const Dict& d = v.as_dict();
      const bool ns = v.is_namespace();
      if (ns) out += "<Namespace ";
      if (std::find(open.begin(), open.end(), &d) != open.end()) {
        out += ns ? "{...}>" : "{...}";
        return;
      }
      open.push_back(&d);
      out += "{";
      bool first = true;
      for (const auto& [k, x] : d.items()) {
        if (!first) out += ", ";
        first = false;
        out += py_string_repr(k);
        out += ": ";
        repr_into(x, out, open, depth + 1);
      }
      out += ns ? "}>" : "}";
      open.pop_back();
      return;
    }
    case Value::Kind::kUndefined: out += "Undefined"; return;
    case Value::Kind::kNone: out += "None"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += py_float_repr(v.as_float()); return;
    case Value::Kind::kString: out += py_string_repr(v.as_string()); return;
    case Value::Kind::kCallable: out += "<built-in function " + v.callable_name() + ">"; return;
  }
}

}  // namespace

std::string Value::repr() const {
  std::string out;
  std::vector<const void*> open;
  repr_into(*this, out, open, 0);
  check_string_size(out.size(), "repr of a value");
  return out;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool object";
    case Kind::kInt: return "int object";
    case Kind::kFloat: return "float object";
    case Kind::kString: return "str object";
    case Kind::kList: return tuple_ ? "tuple object" : "list object";
    case Kind::kDict: return "dict object";
    case Kind::kNamespace: return "Namespace object";
    case Kind::kCallable: return "builtin_function_or_method object";
  }
  return "object";
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.as_list().size() != b.as_list().size() || a.is_tuple() != b.is_tuple()) return false;
      for (std::size_t i = 0; i < a.as_list().size(); ++i) {
        if (!py_equal(a.as_list()[i], b.as_list()[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.as_dict().size() != b.as_dict().size()) return false;
      for (const auto& [k, v] : a.as_dict().items()) {
        const Value* other = b.as_dict().find(k);
        if (!other || !py_equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.as_dict() == &b.as_dict();
    case Value::Kind::kCallable: return &a.as_function() == &b.as_function();
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat: break;
  }
  return false;
}

int py_compare(const Value& a, const Value& b) {
  if (a.is_undefined()) fail(a.undefined_hint());
  if (b.is_undefined()) fail(b.undefined_hint());
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    std::int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!py_equal(x[i], y[i])) return py_compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  fail("'<' not supported between instances of '", a.type_name(), "' and '", b.type_name(), "'");
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  bool neg = s[0] == '-';
  if (neg) s = s.substr(1);
  std::size_t e = s.find('e');
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (std::size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string ip = digits.substr(0, std::min<std::size_t>(digits.size(), static_cast<std::size_t>(exp) + 1));
      while (ip.size() < static_cast<std::size_t>(exp) + 1) ip += '0';
      std::string fp = digits.size() > ip.size() ? digits.substr(ip.size()) : std::string("0");
      out = str_cat(ip, '.', fp);
    } else {
      out = str_cat("0.", std::string(static_cast<std::size_t>(-exp - 1), '0'), digits);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += str_cat('.', digits.substr(1));
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return neg ? str_cat('-', out) : out;
}

std::string py_string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

List iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.as_list();
  if (v.is_dict()) {
    List keys;
    for (const auto& kv : v.as_dict().items()) keys.push_back(Value::string(kv.first));
    return keys;
  }
  if (v.is_string()) {
    const std::vector<char32_t> cps = utf8_decode(v.as_string());
    if (cps.size() > kMaxListItems)
      fail("iterating over a string of ", cps.size(), " characters: more than the limit of ", kMaxListItems);
    List chars;
    chars.reserve(cps.size());
    for (char32_t c : cps) chars.push_back(Value::string(utf8_encode(c)));
    return chars;
  }
  fail("'", v.type_name(), "' is not iterable");
}

std::int64_t py_len(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<std::int64_t>(utf8_decode(v.as_string()).size());
  if (v.is_list()) return static_cast<std::int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<std::int64_t>(v.as_dict().size());
  fail("object of type '", v.type_name(), "' has no len()");
}

std::vector<char32_t> utf8_decode(const std::string& s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < n && i + static_cast<std::size_t>(k) < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3f);
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(n);
  }
  return out;
}

std::string utf8_encode(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

std::string utf8_encode(const std::vector<char32_t>& cps) {
  std::string out;
  for (char32_t c : cps) out += utf8_encode(c);
  return out;
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

}  // namespace moe::jinja
