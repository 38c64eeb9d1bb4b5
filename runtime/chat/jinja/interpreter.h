// Renders a parsed template: statements, expressions and operators with Python semantics,
// scoping as jinja2 scopes (a for loop's body gets a fresh scope per iteration; set inside it
// does not leak out; namespaces carry state across).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/chat/jinja/ast.h"
#include "runtime/core/error.h"

namespace moe::jinja {

// raise_exception(msg) in a template: carries msg unchanged.
class TemplateError : public moe::Error {
 public:
  using moe::Error::Error;
};

// Any other runtime failure, prefixed with "<name>:<line>:<col>: ".
class RenderError : public moe::Error {
 public:
  using moe::Error::Error;
};

// `context` must be a JSON object; its members become the template's variables.
// `context` must be a dict: its entries become the template's variables.
std::string render(const Template& t, const Value& context);

}  // namespace moe::jinja
