// Filters, tests, methods and globals of the subset, with the semantics transformers gets from
// jinja2 (ImmutableSandboxedEnvironment, tojson overridden as json.dumps(ensure_ascii=False)).
#pragma once

#include <string>

#include "runtime/chat/jinja/value.h"

namespace moe::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);

// raise_exception, strftime_now, namespace, range, dict.
Dict make_globals();

}  // namespace moe::jinja
