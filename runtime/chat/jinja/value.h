// Dynamic values of the Jinja subset: what a template variable can hold. Lists, dicts and
// namespaces are shared (reference semantics, as in Python), so a namespace assigned in a loop
// is seen after it. Dicts keep insertion order, as Python dicts do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace moe::jinja {

// Bounds on what one render may build (docs/tokenizer-and-chat.md): far above what chat
// templates need, low enough that a hostile template fails with an error instead of exhausting
// memory, time or the stack.
inline constexpr std::size_t kMaxStringBytes = std::size_t{64} << 20;  // any string value, and the output
inline constexpr std::size_t kMaxListItems = std::size_t{1} << 20;     // items of one list
// Lists and dicts nested in each other (namespaces count as one level: they are owned by the
// render's NamespaceArena); Python's own recursion limit is about 1000.
inline constexpr int kMaxValueDepth = 512;
inline constexpr std::size_t kMaxNamespaces = std::size_t{1} << 20;  // namespace() calls per render

// Throws moe::Error "<what> would be <n> bytes, more than the limit of ..." past kMaxStringBytes.
void check_string_size(std::size_t n, const char* what);

class Value;
using List = std::vector<Value>;

// An insertion-ordered string-keyed map (JSON objects, dict literals, namespaces).
class Dict {
 public:
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
  std::size_t size() const;  // defined after Value (a complete type is needed; clang insists)
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  // Removes and returns every entry (NamespaceArena breaks reference cycles with it).
  std::vector<std::pair<std::string, Value>> take_items();

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Positional and keyword arguments of a call, a filter or a test.
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument at position `i` or named `name`; nullptr when neither is given.
  const Value* get(std::size_t i, const std::string& name) const;
};

using Function = std::function<Value(const CallArgs&)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() = default;  // undefined
  static Value undefined(std::string hint = "");
  static Value none();
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items, bool tuple = false);
  static Value dict(Dict d);
  static Value namespace_(Dict attrs);
  // `depth`: the nesting depth of the values the function holds (a bound method of a dict).
  static Value callable(Function f, std::string name, int depth = 0);
  // JSON -> Value; objects keep the JSON's key order (insertion order for ordered_json).
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  // Python numbers: bool, int, float.
  bool is_number() const { return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  // Nesting depth: 0 for scalars, 1 + the deepest item for lists and dicts, 1 for namespaces.
  int depth() const { return depth_; }

  bool as_bool() const { return b_; }
  std::int64_t as_int() const;  // bool and int
  double as_float() const;      // bool, int and float
  const std::string& as_string() const { return s_; }
  // Undefined: the message jinja2 would raise when the value is used (e.g. "'x' is undefined").
  const std::string& undefined_hint() const { return s_; }
  List& as_list() const { return *list_; }
  Dict& as_dict() const { return *dict_; }  // dicts and namespaces
  const Function& as_function() const { return *fn_; }
  const std::string& callable_name() const { return s_; }

  bool truthy() const;
  std::string str() const;   // Python str()
  std::string repr() const;  // Python repr()
  // "dict object", "str object", ... as jinja2 names types in undefined-attribute messages.
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  int depth_ = 0;
  std::int64_t i_ = 0;
  double f_ = 0.0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
};

inline std::size_t Dict::size() const {
  return items_.size();
}

// Owns every namespace created on this thread while it lives (one per render): namespaces are
// the only mutable values, so every reference cycle (`{% set ns.a = ns %}`) and every long
// chain built by assignment passes through one. On destruction it empties them all first, so
// the cycles are broken and no destructor recurses through a chain. Nests (restores the outer
// arena).
class NamespaceArena {
 public:
  NamespaceArena();
  ~NamespaceArena();
  NamespaceArena(const NamespaceArena&) = delete;
  NamespaceArena& operator=(const NamespaceArena&) = delete;
  // Called by Value::namespace_; throws past kMaxNamespaces.
  static void adopt(const std::shared_ptr<Dict>& d);

 private:
  std::vector<std::shared_ptr<Dict>> owned_;
  NamespaceArena* outer_;
};

// Python semantics shared by the interpreter and the builtins.
bool py_equal(const Value& a, const Value& b);
// <0, 0, >0; throws moe::Error for values Python cannot order.
int py_compare(const Value& a, const Value& b);
std::string py_float_repr(double d);
std::string py_string_repr(const std::string& s);
// Iterating a value as a Python for loop does: list items, dict keys, string characters,
// nothing for undefined. Throws for other kinds.
List iterate(const Value& v);
// len(): code points for strings. Throws for values without a length.
std::int64_t py_len(const Value& v);

// UTF-8 helpers (strings are UTF-8; Python indexes code points).
std::vector<char32_t> utf8_decode(const std::string& s);
std::string utf8_encode(const std::vector<char32_t>& cps);
std::string utf8_encode(char32_t cp);
bool py_isspace(char32_t c);

}  // namespace moe::jinja
