// The parsed template: statements (Node) holding expressions (Expr).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja/lexer.h"
#include "runtime/chat/jinja/value.h"

namespace moe::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // args: items
    kTuple,    // args: items
    kDict,     // args: key, value, key, value, ...
    kAttr,     // args[0].name
    kItem,     // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (null parts omitted)
    kCall,     // args[0](args[1:], kwargs)
    kFilter,   // args[0] | name(args[1:], kwargs)
    kTest,     // args[0] is [not] name(args[1:])
    kUnary,    // name ("-", "+", "not") args[0]
    kBinary,   // args[0] name args[1]; name: + - * / // % ** ~ == != < <= > >= in "not in" and or
    kCond,     // args[0] if args[1] else args[2] (args[2] null: undefined)
  };
  Kind kind;
  Pos pos;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest: "is not"
  int height = 1;        // 1 + the tallest argument (the parser bounds it: eval and ~Expr recurse)
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conds[i] -> bodies[i]; else_body
    kFor,       // for targets in expr [if cond]: bodies[0]; else_body
    kSet,       // set targets[0] (or targets[0].attr, or a tuple of targets) = expr
    kSetBlock,  // {% set targets[0] %}bodies[0]{% endset %}
    kBreak,
    kContinue,
    kBlock,  // a body rendered in place ({% generation %})
  };
  Kind kind;
  Pos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::string> targets;
  std::string attr;  // kSet: namespace attribute
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  Body else_body;
};

class Template {
 public:
  Template(std::string name, Body body) : name_(std::move(name)), body_(std::move(body)) {}
  const std::string& name() const { return name_; }
  const Body& body() const { return body_; }

 private:
  std::string name_;
  Body body_;
};

}  // namespace moe::jinja
