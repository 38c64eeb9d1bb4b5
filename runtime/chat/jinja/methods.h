// Attribute, item and slice access, and the Python methods templates call on strings, dicts and
// lists (str.strip, str.split, dict.items, ...). Mutating list and dict methods are refused, as
// transformers' ImmutableSandboxedEnvironment refuses them.
#pragma once

#include <string>

#include "runtime/chat/jinja/value.h"

namespace moe::jinja {

// obj.name (methods first, then dict keys) and obj[key] (keys first, then methods), as jinja2's
// environment.getattr / getitem. Missing: undefined carrying jinja2's message.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on lists and strings (none for an omitted part).
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python string operations (UTF-8 in, UTF-8 out; case mapping is ASCII-only).
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, std::int64_t count);

}  // namespace moe::jinja
