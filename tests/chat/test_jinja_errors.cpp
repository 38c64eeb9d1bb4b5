// Errors: constructs outside the subset are refused at parse time naming the construct and its
// line:col; unterminated blocks, tags, strings and comments; unknown filters and tests; and
// runtime failures (raise_exception carries its message unchanged; others name line:col and
// jinja2's message).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace {

std::string parse_error(const std::string& src) {
  try {
    moe::ChatTemplate::parse(src, "tpl");
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "<parsed>";
}

std::string render_error(const std::string& src, const nlohmann::json& ctx = nlohmann::json::object()) {
  moe::ChatTemplate t = moe::ChatTemplate::parse(src, "tpl");
  try {
    return "<rendered> " + t.render(ctx);
  } catch (const moe::Error& e) {
    return e.what();
  }
}

TEST(JinjaErrors, UnsupportedConstructsNameTheConstructAndPosition) {
  EXPECT_EQ(parse_error("a\n  {% macro m() %}x{% endmacro %}"), "tpl:2:6: unsupported statement 'macro'");
  EXPECT_EQ(parse_error("{% call m() %}{% endcall %}"), "tpl:1:4: unsupported statement 'call'");
  EXPECT_EQ(parse_error("{% filter upper %}x{% endfilter %}"), "tpl:1:4: unsupported statement 'filter'");
  EXPECT_EQ(parse_error("{% include 'x' %}"), "tpl:1:4: unsupported statement 'include'");
  EXPECT_EQ(parse_error("{% extends 'x' %}"), "tpl:1:4: unsupported statement 'extends'");
  EXPECT_EQ(parse_error("\n\n{%- with a = 1 %}{% endwith %}"), "tpl:3:5: unsupported statement 'with'");
  EXPECT_EQ(parse_error("{% for x in y recursive %}{% endfor %}"), "tpl:1:15: unsupported loop modifier 'recursive'");
  EXPECT_EQ(parse_error("{{ 1 < x < 3 }}"), "tpl:1:10: unsupported chained comparison '<'");
  EXPECT_EQ(parse_error("{{ f(*args) }}"), "tpl:1:6: unsupported argument unpacking '*'");
  EXPECT_EQ(parse_error("{% set x | upper %}a{% endset %}"), "tpl:1:10: unsupported filtered block set '|'");
  EXPECT_EQ(parse_error("{% frobnicate %}"), "tpl:1:4: unknown statement 'frobnicate'");
}

TEST(JinjaErrors, UnknownFilterAndTest) {
  EXPECT_EQ(parse_error("{{ x | frobnicate }}"), "tpl:1:8: unknown filter 'frobnicate'");
  EXPECT_EQ(parse_error("line\n{{ x|trim|wordwrap(3) }}"), "tpl:2:11: unknown filter 'wordwrap'");
  EXPECT_EQ(parse_error("{% if x is frobnicated %}{% endif %}"), "tpl:1:12: unknown test 'frobnicated'");
}

TEST(JinjaErrors, UnterminatedThings) {
  EXPECT_EQ(parse_error("{% if x %}\nyes"), "tpl:1:4: unterminated 'if' block (expected 'endif')");
  EXPECT_EQ(parse_error("a\n{% for m in messages %}{{ m }}"), "tpl:2:4: unterminated 'for' block (expected 'endfor')");
  EXPECT_EQ(parse_error("{% set x %}abc"), "tpl:1:4: unterminated 'set' block (expected 'endset')");
  EXPECT_EQ(parse_error("ab {{ x "), "tpl:1:4: unterminated '{{' tag");
  EXPECT_EQ(parse_error("{% if x"), "tpl:1:1: unterminated '{%' tag");
  EXPECT_EQ(parse_error("{{ 'abc }}"), "tpl:1:4: unterminated string literal");
  EXPECT_EQ(parse_error("{# never closed"), "tpl:1:1: unterminated comment (missing '#}')");
  EXPECT_EQ(parse_error("{% raw %}x"), "tpl:1:1: unterminated 'raw' block (missing '{% endraw %}')");
  EXPECT_EQ(parse_error("{% endif %}"), "tpl:1:4: unexpected 'endif'");
  EXPECT_EQ(parse_error("{% break %}"), "tpl:1:4: 'break' outside of a loop");
  EXPECT_EQ(parse_error("{{ }}"), "tpl:1:4: unexpected '}}'");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessage) {
  EXPECT_EQ(render_error("{{ raise_exception('Roles must alternate: ' ~ n) }}", {{"n", 3}}), "Roles must alternate: 3");
  EXPECT_EQ(render_error("{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools!') }}"
                         "{% endif %}{% endfor %}",
                         {{"messages", {{{"role", "user"}}, {{"role", "tool"}}}}}),
            "no tools!");
}

TEST(JinjaErrors, RuntimeErrorsAsJinja2RaisesThem) {
  // Values computed with jinja2 as transformers configures it; messages prefixed with line:col.
  EXPECT_EQ(render_error("{{ u.x }}"), "tpl:1:1: 'u' is undefined");
  EXPECT_EQ(render_error("\n{{ d.zz.y }}", {{"d", nlohmann::json::object()}}),
            "tpl:2:1: 'dict object' has no attribute 'zz'");
  EXPECT_EQ(render_error("{{ u + 'a' }}"), "tpl:1:1: 'u' is undefined");
  EXPECT_EQ(render_error("{{ foo() }}"), "tpl:1:1: 'foo' is undefined");
  EXPECT_EQ(render_error("{{ l.append(3) }}", {{"l", {1}}}),
            "tpl:1:1: access to attribute 'append' of 'list object' is unsafe.");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}"), "tpl:1:1: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("{{ u|tojson }}"), "tpl:1:1: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(render_error("{% set x = 1 %}{% set x.y = 2 %}"),
            "tpl:1:19: cannot assign attribute on non-namespace object");
}

TEST(JinjaGlobals, StrftimeNowAndRange) {
  EXPECT_NE(render_error("{{ range(100001) }}").find("Range too big"), std::string::npos);
  moe::ChatTemplate ok = moe::ChatTemplate::parse("{{ strftime_now('%Y')|length }}|{{ range(3)|list }}");
  EXPECT_EQ(ok.render(nlohmann::json::object()), "4|[0, 1, 2]");
}

TEST(JinjaErrors, ContextMustBeAnObject) {
  moe::ChatTemplate t = moe::ChatTemplate::parse("x");
  EXPECT_THROW(t.render(nlohmann::json::array()), moe::Error);
}

}  // namespace
