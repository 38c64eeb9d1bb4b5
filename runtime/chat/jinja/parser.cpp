#include "runtime/chat/jinja/parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>

#include "runtime/chat/jinja/builtins.h"
#include "runtime/core/error.h"

namespace moe::jinja {
namespace {

// Nesting of blocks, brackets and unary operators, and the height of one expression's tree:
// the parser, the renderer and the tree's destructor recurse that deep. Chat templates nest a
// few levels; jinja2 itself stops near Python's recursion limit.
constexpr int kMaxNesting = 256;

const std::set<std::string> kUnsupportedStatements = {"macro", "call",    "filter",   "include", "import",
                                                      "from",  "extends", "block",    "with",    "autoescape",
                                                      "do",    "trans",   "pluralize"};

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name) : toks_(std::move(tokens)), name_(name) {}

  Body parse_template() {
    Body body = parse_body({}, "", Pos{});
    return body;
  }

 private:
  const Token& peek(std::size_t ahead = 0) const { return toks_[std::min(i_ + ahead, toks_.size() - 1)]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op, std::size_t ahead = 0) const {
    return peek(ahead).type == Tok::kOp && peek(ahead).text == op;
  }
  bool is_name(const char* n, std::size_t ahead = 0) const {
    return peek(ahead).type == Tok::kName && peek(ahead).text == n;
  }

  [[noreturn]] void error(const Pos& p, const std::string& what) const {
    fail(name_, ":", p.line, ":", p.col, ": ", what);
  }
  [[noreturn]] void unexpected(const Token& t) const {
    std::string what = t.type == Tok::kEof        ? "end of template"
                       : t.type == Tok::kVarEnd   ? "'}}'"
                       : t.type == Tok::kBlockEnd ? "'%}'"
                                                  : "'" + t.text + "'";
    error(t.pos, "unexpected " + what);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) unexpected(peek());
    next();
  }
  std::string expect_name() {
    if (peek().type != Tok::kName) unexpected(peek());
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Tok::kBlockEnd) unexpected(peek());
    next();
  }

  static ExprPtr make(Expr::Kind kind, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // A finished node: its height from its arguments', refused past kMaxNesting.
  ExprPtr seal(ExprPtr e) const {
    int h = 0;
    for (const auto& a : e->args)
      if (a) h = std::max(h, a->height);
    for (const auto& kv : e->kwargs)
      if (kv.second) h = std::max(h, kv.second->height);
    e->height = h + 1;
    if (e->height > kMaxNesting) error(e->pos, str_cat("expression nested deeper than ", kMaxNesting, " levels"));
    return e;
  }

  // Counts one level of recursion of the parser while it lives.
  class Nest {
   public:
    explicit Nest(Parser& p) : p_(p) {
      if (++p_.nesting_ > kMaxNesting)
        p_.error(p_.peek().pos, str_cat("template nested deeper than ", kMaxNesting, " levels"));
    }
    ~Nest() { --p_.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    Parser& p_;
  };

  std::int64_t int_literal(const Token& t) const {
    errno = 0;
    const long long v = std::strtoll(t.text.c_str(), nullptr, 10);
    if (errno == ERANGE) error(t.pos, "integer literal " + t.text + " does not fit in 64 bits");
    return v;
  }

  // ---- statements --------------------------------------------------------------------------

  // Parses nodes until a {% <terminator> %} (left unconsumed after "{%") or the end of input.
  Body parse_body(const std::set<std::string>& terminators, const std::string& opener, Pos opener_pos) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == Tok::kEof) {
        if (!terminators.empty()) {
          std::string want = "'end" + opener + "'";
          error(opener_pos, "unterminated '" + opener + "' block (expected " + want + ")");
        }
        return body;
      }
      if (t.type == Tok::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->pos = t.pos;
        n->text = t.text;
        body.push_back(std::move(n));
        next();
      } else if (t.type == Tok::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->pos = t.pos;
        next();
        n->expr = parse_tuple();
        if (peek().type != Tok::kVarEnd) unexpected(peek());
        next();
        body.push_back(std::move(n));
      } else if (t.type == Tok::kBlockBegin) {
        const Token& kw = peek(1);
        if (kw.type != Tok::kName) unexpected(kw);
        if (terminators.count(kw.text)) {
          next();
          return body;
        }
        next();
        body.push_back(parse_statement());
      } else {
        unexpected(t);
      }
    }
  }

  NodePtr parse_statement() {
    Nest nest(*this);
    const Token kw = next();
    auto n = std::make_unique<Node>();
    n->pos = kw.pos;
    if (kw.text == "if") return parse_if(std::move(n));
    if (kw.text == "for") return parse_for(std::move(n));
    if (kw.text == "set") return parse_set(std::move(n));
    if (kw.text == "break" || kw.text == "continue") {
      if (loop_depth_ == 0) error(kw.pos, "'" + kw.text + "' outside of a loop");
      n->kind = kw.text == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect_block_end();
      return n;
    }
    if (kw.text == "generation") {
      n->kind = Node::Kind::kBlock;
      expect_block_end();
      n->bodies.push_back(parse_body({"endgeneration"}, "generation", kw.pos));
      next();
      expect_block_end();
      return n;
    }
    if (kUnsupportedStatements.count(kw.text)) error(kw.pos, "unsupported statement '" + kw.text + "'");
    if (kw.text.rfind("end", 0) == 0 || kw.text == "elif" || kw.text == "else") {
      error(kw.pos, "unexpected '" + kw.text + "'");
    }
    error(kw.pos, "unknown statement '" + kw.text + "'");
  }

  NodePtr parse_if(NodePtr n) {
    n->kind = Node::Kind::kIf;
    Pos opener = n->pos;
    n->conds.push_back(parse_expression());
    expect_block_end();
    while (true) {
      n->bodies.push_back(parse_body({"elif", "else", "endif"}, "if", opener));
      std::string kw = next().text;
      if (kw == "elif") {
        n->conds.push_back(parse_expression());
        expect_block_end();
      } else if (kw == "else") {
        expect_block_end();
        n->else_body = parse_body({"endif"}, "if", opener);
        next();
        expect_block_end();
        return n;
      } else {
        expect_block_end();
        return n;
      }
    }
  }

  NodePtr parse_for(NodePtr n) {
    n->kind = Node::Kind::kFor;
    n->targets.push_back(expect_name());
    while (is_op(",")) {
      next();
      n->targets.push_back(expect_name());
    }
    if (!is_name("in")) unexpected(peek());
    next();
    n->expr = parse_or();
    if (is_op(",")) error(peek().pos, "unsupported loop over a tuple literal ','");
    if (is_name("if")) {
      next();
      n->cond = parse_expression();
    }
    if (is_name("recursive")) error(peek().pos, "unsupported loop modifier 'recursive'");
    expect_block_end();
    ++loop_depth_;
    n->bodies.push_back(parse_body({"else", "endfor"}, "for", n->pos));
    --loop_depth_;
    if (next().text == "else") {
      expect_block_end();
      n->else_body = parse_body({"endfor"}, "for", n->pos);
      next();
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set(NodePtr n) {
    n->kind = Node::Kind::kSet;
    n->targets.push_back(expect_name());
    if (is_op(".")) {
      next();
      n->attr = expect_name();
    } else {
      while (is_op(",")) {
        next();
        n->targets.push_back(expect_name());
      }
    }
    if (peek().type == Tok::kBlockEnd && n->attr.empty() && n->targets.size() == 1) {
      n->kind = Node::Kind::kSetBlock;
      next();
      n->bodies.push_back(parse_body({"endset"}, "set", n->pos));
      next();
      expect_block_end();
      return n;
    }
    if (is_op("|")) error(peek().pos, "unsupported filtered block set '|'");
    expect_op("=");
    n->expr = parse_tuple();
    expect_block_end();
    return n;
  }

  // ---- expressions -------------------------------------------------------------------------

  ExprPtr parse_tuple() {
    Pos p = peek().pos;
    ExprPtr first = parse_expression();
    if (!is_op(",")) return first;
    auto t = make(Expr::Kind::kTuple, p);
    t->args.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (peek().type == Tok::kVarEnd || peek().type == Tok::kBlockEnd) break;
      t->args.push_back(parse_expression());
    }
    return seal(std::move(t));
  }

  ExprPtr parse_expression() {
    Nest nest(*this);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      Pos p = next().pos;
      auto c = make(Expr::Kind::kCond, p);
      ExprPtr cond = parse_or();
      ExprPtr otherwise;
      if (is_name("else")) {
        next();
        otherwise = parse_expression();
      }
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(otherwise));
      e = seal(std::move(c));
    }
    return e;
  }

  ExprPtr binary(const std::string& op, Pos p, ExprPtr l, ExprPtr r) {
    auto b = make(Expr::Kind::kBinary, p);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return seal(std::move(b));
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      Pos p = next().pos;
      e = binary("or", p, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      Pos p = next().pos;
      e = binary("and", p, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      auto u = make(Expr::Kind::kUnary, next().pos);
      u->name = "not";
      u->args.push_back(parse_not());
      return seal(std::move(u));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    int ops = 0;
    while (true) {
      Pos p = peek().pos;
      std::string op;
      if (peek().type == Tok::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                      peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        return e;
      }
      if (++ops > 1) error(p, "unsupported chained comparison '" + op + "'");
      e = binary(op, p, std::move(e), parse_math1());
    }
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      std::string op = t.text;
      e = binary(op, t.pos, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      Pos p = next().pos;
      e = binary("~", p, std::move(e), parse_math2());
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      std::string op = t.text;
      e = binary(op, t.pos, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      Pos p = next().pos;
      e = binary("**", p, std::move(e), parse_unary(true));
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      Nest nest(*this);
      const Token& t = next();
      e = make(Expr::Kind::kUnary, t.pos);
      e->name = t.text;
      e->args.push_back(parse_unary(false));
      e = seal(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token t = next();
    switch (t.type) {
      case Tok::kName: {
        auto e = make(Expr::Kind::kLiteral, t.pos);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case Tok::kString: {
        std::string s = t.text;
        while (peek().type == Tok::kString) s += next().text;
        auto e = make(Expr::Kind::kLiteral, t.pos);
        e->literal = Value::string(s);
        return e;
      }
      case Tok::kInt: {
        auto e = make(Expr::Kind::kLiteral, t.pos);
        e->literal = Value::integer(int_literal(t));
        return e;
      }
      case Tok::kFloat: {
        auto e = make(Expr::Kind::kLiteral, t.pos);
        e->literal = Value::number(std::strtod(t.text.c_str(), nullptr));
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") return parse_paren(t.pos);
        if (t.text == "[") return parse_list(t.pos);
        if (t.text == "{") return parse_dict(t.pos);
        break;
      case Tok::kText:
      case Tok::kVarBegin:
      case Tok::kVarEnd:
      case Tok::kBlockBegin:
      case Tok::kBlockEnd:
      case Tok::kEof: break;
    }
    unexpected(t);
  }

  ExprPtr parse_paren(Pos p) {
    if (is_op(")")) {
      next();
      return make(Expr::Kind::kTuple, p);
    }
    ExprPtr e = parse_expression();
    if (!is_op(",")) {
      expect_op(")");
      return e;
    }
    auto t = make(Expr::Kind::kTuple, p);
    t->args.push_back(std::move(e));
    while (is_op(",")) {
      next();
      if (is_op(")")) break;
      t->args.push_back(parse_expression());
    }
    expect_op(")");
    return seal(std::move(t));
  }

  ExprPtr parse_list(Pos p) {
    auto l = make(Expr::Kind::kList, p);
    while (!is_op("]")) {
      if (!l->args.empty()) expect_op(",");
      if (is_op("]")) break;
      l->args.push_back(parse_expression());
    }
    next();
    return seal(std::move(l));
  }

  ExprPtr parse_dict(Pos p) {
    auto d = make(Expr::Kind::kDict, p);
    while (!is_op("}")) {
      if (!d->args.empty()) expect_op(",");
      if (is_op("}")) break;
      d->args.push_back(parse_expression());
      expect_op(":");
      d->args.push_back(parse_expression());
    }
    next();
    return seal(std::move(d));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        Pos p = next().pos;
        const Token t = next();
        if (t.type == Tok::kName) {
          auto a = make(Expr::Kind::kAttr, p);
          a->name = t.text;
          a->args.push_back(std::move(e));
          e = seal(std::move(a));
        } else if (t.type == Tok::kInt) {
          auto idx = make(Expr::Kind::kLiteral, t.pos);
          idx->literal = Value::integer(int_literal(t));
          auto it = make(Expr::Kind::kItem, p);
          it->args.push_back(std::move(e));
          it->args.push_back(std::move(idx));
          e = seal(std::move(it));
        } else {
          unexpected(t);
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e), next().pos);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, Pos p) {
    ExprPtr parts[3];
    int part = 0;
    bool slice = false;
    while (!is_op("]")) {
      if (is_op(":")) {
        next();
        slice = true;
        if (++part > 2) unexpected(peek());
        continue;
      }
      if (parts[part]) unexpected(peek());
      parts[part] = parse_expression();
      if (is_op(",")) error(peek().pos, "unsupported tuple subscript ','");
    }
    next();
    if (!slice) {
      if (!parts[0]) unexpected(peek());
      auto it = make(Expr::Kind::kItem, p);
      it->args.push_back(std::move(obj));
      it->args.push_back(std::move(parts[0]));
      return seal(std::move(it));
    }
    auto s = make(Expr::Kind::kSlice, p);
    s->args.push_back(std::move(obj));
    for (auto& part_expr : parts) s->args.push_back(std::move(part_expr));
    return seal(std::move(s));
  }

  // "(" args ")": positional and keyword arguments into e->args[first..] / e->kwargs.
  void parse_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) error(peek().pos, "unsupported argument unpacking '" + peek().text + "'");
      if (peek().type == Tok::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression());
      } else {
        if (!e.kwargs.empty()) error(peek().pos, "positional argument follows keyword argument");
        e.args.push_back(parse_expression());
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = make(Expr::Kind::kCall, peek().pos);
    c->args.push_back(std::move(callee));
    parse_args(*c);
    return seal(std::move(c));
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        next();
        const Token t = peek();
        std::string fname = expect_name();
        if (!has_filter(fname)) error(t.pos, "unknown filter '" + fname + "'");
        auto f = make(Expr::Kind::kFilter, t.pos);
        f->name = fname;
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_args(*f);
        e = seal(std::move(f));
      } else if (is_name("is")) {
        next();
        auto test = make(Expr::Kind::kTest, peek().pos);
        if (is_name("not")) {
          next();
          test->negated = true;
        }
        const Token t = peek();
        test->name = expect_name();
        if (!has_test(test->name)) error(t.pos, "unknown test '" + test->name + "'");
        test->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_args(*test);
        } else if ((peek().type == Tok::kName || peek().type == Tok::kString || peek().type == Tok::kInt ||
                    peek().type == Tok::kFloat || is_op("(") || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) error(peek().pos, "cannot chain multiple tests with 'is'");
          test->args.push_back(parse_postfix(parse_primary()));
        }
        e = seal(std::move(test));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> toks_;
  std::size_t i_ = 0;
  const std::string& name_;
  int loop_depth_ = 0;
  int nesting_ = 0;
};

}  // namespace

std::unique_ptr<Template> parse(const std::string& source, const std::string& name) {
  Parser p(tokenize(source, name), name);
  return std::make_unique<Template>(name, p.parse_template());
}

}  // namespace moe::jinja
