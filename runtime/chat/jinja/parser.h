// Recursive-descent parser for the Jinja subset, following jinja2's grammar and operator
// precedence. Constructs outside the subset are refused here, at parse time, with
// "<name>:<line>:<col>: unsupported <construct> '<text>'"; unknown filters and tests too.
#pragma once

#include <memory>
#include <string>

#include "runtime/chat/jinja/ast.h"

namespace moe::jinja {

std::unique_ptr<Template> parse(const std::string& source, const std::string& name);

}  // namespace moe::jinja
