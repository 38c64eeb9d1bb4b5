#include "runtime/chat/jinja/interpreter.h"

#include <cmath>
#include <unordered_map>

#include "runtime/chat/jinja/builtins.h"
#include "runtime/chat/jinja/methods.h"

namespace moe::jinja {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

[[noreturn]] void fail_undefined(const Value& v) {
  fail(v.undefined_hint().empty() ? std::string("value is undefined") : v.undefined_hint());
}

// for-loop iterations (all loops, nested ones included) in one render. The fuzz build
// (MOE_FUZZ, docs/fuzzing.md) runs ~80x slower under its sanitizers: a lower bound keeps a
// template at the limit under the fuzzers' 10 s timeout.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr std::int64_t kMaxLoopIterations = std::int64_t{1} << 15;
#else
constexpr std::int64_t kMaxLoopIterations = std::int64_t{1} << 21;
#endif

// Python ints are unbounded; here they are 64-bit, and a result outside that range is an error
// (never a wrapped value).
[[noreturn]] void int_overflow(std::int64_t x, const char* op, std::int64_t y) {
  fail("integer overflow: ", x, " ", op, " ", y, " does not fit in 64 bits");
}

// b != 0; b == -1 handled by the caller (INT64_MIN / -1 overflows).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// a ** b for b >= 0 by squaring: at most 2 * 63 multiplications, each checked.
std::int64_t int_pow(std::int64_t a, std::int64_t b) {
  if (a == 0) return b == 0 ? 1 : 0;
  if (a == 1) return 1;
  if (a == -1) return b % 2 == 0 ? 1 : -1;
  std::int64_t result = 1, base = a, e = b;
  while (true) {
    if (e & 1) {
      if (__builtin_mul_overflow(result, base, &result)) int_overflow(a, "**", b);
    }
    e >>= 1;
    if (e == 0) return result;
    if (__builtin_mul_overflow(base, base, &base)) int_overflow(a, "**", b);
  }
}

// seq * n (Python: n <= 0 gives an empty sequence), bounded by kMaxStringBytes / kMaxListItems.
Value repeat(const Value& seq, std::int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
  const auto count = static_cast<std::uint64_t>(n);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && count > kMaxStringBytes / s.size())
      fail("string repetition makes more than ", kMaxStringBytes, " bytes (", s.size(), " x ", n, ")");
    std::string out;
    out.reserve(s.size() * count);
    for (std::uint64_t i = 0; i < count && !s.empty(); ++i) out += s;
    return Value::string(std::move(out));
  }
  const List& items = seq.as_list();
  if (!items.empty() && count > kMaxListItems / items.size())
    fail("list repetition makes more than ", kMaxListItems, " items (", items.size(), " x ", n, ")");
  List out;
  out.reserve(items.size() * count);
  for (std::uint64_t i = 0; i < count && !items.empty(); ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.is_tuple());
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_string_size(a.as_string().size() + b.as_string().size(), "string concatenation");
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      List out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(out), a.is_tuple());
    }
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = a.is_number() ? b : a;
    const Value& n = a.is_number() ? a : b;
    if (!n.is_number() || n.kind() == Value::Kind::kFloat || (!seq.is_string() && !seq.is_list())) {
      fail("unsupported operand type(s) for *: '", a.type_name(), "' and '", b.type_name(), "'");
    }
    return repeat(seq, n.as_int());
  }
  if (!a.is_number() || !b.is_number()) {
    if (op == "+" && a.is_string()) {
      fail("can only concatenate str (not \"", b.type_name().substr(0, b.type_name().find(' ')), "\") to str");
    }
    fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
  }
  bool floats = a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
  if (op == "/") {
    if (b.as_float() == 0.0) fail("division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (op == "**") {
    if (!floats && b.as_int() >= 0) return Value::integer(int_pow(a.as_int(), b.as_int()));
    return Value::number(std::pow(a.as_float(), b.as_float()));
  }
  if (floats) {
    double x = a.as_float(), y = b.as_float();
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (y == 0.0) fail("float division by zero");
    if (op == "//") return Value::number(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
  }
  std::int64_t x = a.as_int(), y = b.as_int(), r = 0;
  if (op == "+") {
    if (__builtin_add_overflow(x, y, &r)) int_overflow(x, "+", y);
    return Value::integer(r);
  }
  if (op == "-") {
    if (__builtin_sub_overflow(x, y, &r)) int_overflow(x, "-", y);
    return Value::integer(r);
  }
  if (op == "*") {
    if (__builtin_mul_overflow(x, y, &r)) int_overflow(x, "*", y);
    return Value::integer(r);
  }
  if (y == 0) fail("integer division or modulo by zero");
  if (y == -1) {  // x // -1 is -x (overflows for INT64_MIN); x % -1 is 0
    if (op == "%") return Value::integer(0);
    if (__builtin_sub_overflow(std::int64_t{0}, x, &r)) int_overflow(x, "//", y);
    return Value::integer(r);
  }
  if (op == "//") return Value::integer(floor_div(x, y));
  r = x % y;  // Python's sign (the divisor's); x - (x // y) * y could overflow
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return Value::integer(r);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not ", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.as_list()) {
        if (py_equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable: break;
  }
  fail("argument of type '", container.type_name(), "' is not iterable");
}

class Renderer {
 public:
  Renderer(const Template& t, const Value& context) : t_(t) {
    frames_.emplace_back();
    Dict globals = make_globals();
    for (const auto& [k, v] : globals.items()) frames_.back()[k] = v;
    frames_.emplace_back();
    if (context.kind() != Value::Kind::kDict) fail("chat template context must be a JSON object");
    for (const auto& [k, v] : context.as_dict().items()) frames_.back()[k] = v;
    frames_.emplace_back();
  }

  std::string run() {
    exec_body(t_.body());
    return std::move(out_);
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  Flow exec_body(const Body& body) {
    for (const NodePtr& n : body) {
      Flow f = exec_located(*n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec_located(const Node& n) {
    try {
      return exec(n);
    } catch (const TemplateError&) {
      throw;
    } catch (const RenderError&) {
      throw;
    } catch (const moe::Error& e) {
      throw RenderError(str_cat(t_.name(), ":", n.pos.line, ":", n.pos.col, ": ", e.what()));
    }
  }

  void emit(const std::string& s) {
    if (out_.size() + s.size() > kMaxStringBytes)
      fail("the rendered output exceeds the limit of ", kMaxStringBytes, " bytes");
    out_ += s;
  }

  // One for-loop iteration (or filter test); throws past kMaxLoopIterations in all.
  void count_iteration() {
    if (++iterations_ > kMaxLoopIterations)
      fail("the template runs more than ", kMaxLoopIterations, " loop iterations in all");
  }

  void assign(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      frames_.back()[targets[0]] = v;
      return;
    }
    List items = iterate(v);
    if (items.size() != targets.size()) {
      fail(items.size() < targets.size() ? "not enough" : "too many", " values to unpack (expected ", targets.size(),
           ", got ", items.size(), ")");
    }
    for (std::size_t i = 0; i < targets.size(); ++i) frames_.back()[targets[i]] = items[i];
  }

  Flow exec(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kText: emit(n.text); return Flow::kNormal;
      case Node::Kind::kOutput: emit(eval(*n.expr).str()); return Flow::kNormal;
      case Node::Kind::kIf:
        for (std::size_t i = 0; i < n.conds.size(); ++i) {
          if (eval(*n.conds[i]).truthy()) return exec_body(n.bodies[i]);
        }
        return exec_body(n.else_body);
      case Node::Kind::kFor: return exec_for(n);
      case Node::Kind::kSet: {
        Value v = eval(*n.expr);
        if (n.attr.empty()) {
          assign(n.targets, v);
        } else {
          Value ns = lookup(n.targets[0]);
          if (!ns.is_namespace()) fail("cannot assign attribute on non-namespace object");
          if (!n.attr.empty() && n.attr[0] == '_') fail("cannot store underscore-prefixed attribute '", n.attr, "'");
          ns.as_dict().set(n.attr, v);
        }
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock: {
        std::string saved = std::move(out_);
        out_.clear();
        exec_body(n.bodies[0]);
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        frames_.back()[n.targets[0]] = Value::string(captured);
        return Flow::kNormal;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
      case Node::Kind::kBlock: return exec_body(n.bodies[0]);
    }
    return Flow::kNormal;
  }

  Flow exec_for(const Node& n) {
    List items = iterate(eval(*n.expr));
    if (n.cond) {
      List kept;
      for (const Value& item : items) {
        count_iteration();
        frames_.emplace_back();
        assign(n.targets, item);
        bool keep = eval(*n.cond).truthy();
        frames_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(n.else_body);
    auto len = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < len; ++i) {
      count_iteration();
      Dict loop;
      loop.set("index0", Value::integer(i));
      loop.set("index", Value::integer(i + 1));
      loop.set("revindex0", Value::integer(len - i - 1));
      loop.set("revindex", Value::integer(len - i));
      loop.set("first", Value::boolean(i == 0));
      loop.set("last", Value::boolean(i == len - 1));
      loop.set("length", Value::integer(len));
      loop.set("depth", Value::integer(1));
      loop.set("depth0", Value::integer(0));
      if (i > 0) loop.set("previtem", items[static_cast<std::size_t>(i - 1)]);
      if (i + 1 < len) loop.set("nextitem", items[static_cast<std::size_t>(i + 1)]);
      loop.set("cycle", Value::callable(
                            [i](const CallArgs& a) {
                              if (a.pos.empty()) fail("no items for cycling given");
                              return a.pos[static_cast<std::size_t>(i) % a.pos.size()];
                            },
                            "cycle"));
      frames_.emplace_back();
      frames_.back()["loop"] = Value::dict(std::move(loop));
      Flow f = Flow::kNormal;
      try {
        assign(n.targets, items[static_cast<std::size_t>(i)]);
        f = exec_body(n.bodies[0]);
      } catch (...) {
        frames_.pop_back();
        throw;
      }
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  CallArgs eval_args(const Expr& e) {
    CallArgs a;
    for (std::size_t i = 1; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return Value::list(std::move(items), e.kind == Expr::Kind::kTuple);
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i]);
          if (!k.is_string()) fail("unsupported non-string dict key ", k.repr());
          d.set(k.as_string(), eval(*e.args[i + 1]));
        }
        return Value::dict(std::move(d));
      }
      case Expr::Kind::kAttr: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) fail_undefined(obj);
        return get_attr(obj, e.name);
      }
      case Expr::Kind::kItem: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) fail_undefined(obj);
        return get_item(obj, eval(*e.args[1]));
      }
      case Expr::Kind::kSlice: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) fail_undefined(obj);
        auto part = [&](std::size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
        return get_slice(obj, part(1), part(2), part(3));
      }
      case Expr::Kind::kCall: {
        Value callee = eval(*e.args[0]);
        CallArgs a = eval_args(e);
        if (callee.is_undefined()) fail_undefined(callee);
        if (!callee.is_callable()) fail("'", callee.type_name(), "' is not callable");
        return callee.as_function()(a);
      }
      case Expr::Kind::kFilter: {
        Value v = eval(*e.args[0]);
        return apply_filter(e.name, v, eval_args(e));
      }
      case Expr::Kind::kTest: {
        Value v = eval(*e.args[0]);
        return Value::boolean(apply_test(e.name, v, eval_args(e)) != e.negated);
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) fail("bad operand type for unary ", e.name, ": '", v.type_name(), "'");
        if (e.name == "+") return v.kind() == Value::Kind::kBool ? Value::integer(v.as_int()) : v;
        if (v.kind() == Value::Kind::kFloat) return Value::number(-v.as_float());
        std::int64_t r = 0;
        if (__builtin_sub_overflow(std::int64_t{0}, v.as_int(), &r))
          fail("integer overflow: -(", v.as_int(), ") does not fit in 64 bits");
        return Value::integer(r);
      }
      case Expr::Kind::kBinary: return eval_binary(e);
      case Expr::Kind::kCond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("the inline if-expression evaluated to false");
    }
    return Value();
  }

  Value eval_binary(const Expr& e) {
    const std::string& op = e.name;
    Value a = eval(*e.args[0]);
    if (op == "and") return a.truthy() ? eval(*e.args[1]) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.args[1]);
    Value b = eval(*e.args[1]);
    if (op == "~") {
      std::string s = a.str();
      const std::string t = b.str();
      check_string_size(s.size() + t.size(), "string concatenation");
      return Value::string(s + t);
    }
    if (op == "==") return Value::boolean(py_equal(a, b));
    if (op == "!=") return Value::boolean(!py_equal(a, b));
    if (op == "<") return Value::boolean(py_compare(a, b) < 0);
    if (op == "<=") return Value::boolean(py_compare(a, b) <= 0);
    if (op == ">") return Value::boolean(py_compare(a, b) > 0);
    if (op == ">=") return Value::boolean(py_compare(a, b) >= 0);
    if (op == "in") return Value::boolean(contains(b, a));
    if (op == "not in") return Value::boolean(!contains(b, a));
    return arithmetic(op, a, b);
  }

  const Template& t_;
  std::vector<Frame> frames_;
  std::string out_;
  std::int64_t iterations_ = 0;
};

}  // namespace

std::string render(const Template& t, const Value& context) {
  NamespaceArena namespaces;  // declared first: outlives the renderer's frames
  return Renderer(t, context).run();
}

}  // namespace moe::jinja
