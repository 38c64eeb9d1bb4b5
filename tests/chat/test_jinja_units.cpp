// Unit tests of the Jinja subset on small templates. Every expected string below was computed by
// rendering the template with python jinja2 configured exactly as transformers configures it
// (transformers.utils.chat_template_utils._compile_jinja_template: ImmutableSandboxedEnvironment,
// trim_blocks=True, lstrip_blocks=True, loopcontrols, tojson = json.dumps(ensure_ascii=False),
// raise_exception, strftime_now, namespace), with kUnitContext as the variables (jinja2 3.1.6,
// transformers 5.23). Dict keys in the context are sorted because nlohmann::json sorts them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace {

struct UnitCase {
  const char* group;
  const char* tpl;
  const char* expected;
};

// clang-format off
const UnitCase kUnitCases[] = {
    {"Whitespace", R"J({% if true %}
yes
{% endif %}
end)J",
     R"J(yes
end)J"},
    {"Whitespace", R"J(  {% if true %}
  x
  {% endif %}
y)J",
     R"J(  x
y)J"},
    {"Whitespace", R"J(a  {% if true %}b{% endif %}  c)J",
     R"J(a  b  c)J"},
    {"Whitespace", R"J(a 
 {%- if true -%} 
 b 
 {%- endif -%} 
 c)J",
     R"J(abc)J"},
    {"Whitespace", R"J(a
  {{- 'x' -}}  
b)J",
     R"J(axb)J"},
    {"Whitespace", R"J(a
  {{ 'x' }}
  b)J",
     R"J(a
  x
  b)J"},
    {"Whitespace", R"J({# comment #}
x
  {# indented comment #}
y {#- strip -#}  z)J",
     R"J(x
yz)J"},
    {"Whitespace", R"J(a
  {%+ if true %}b{% endif +%}
c)J",
     R"J(a
  b
c)J"},
    {"Whitespace", R"J({% raw %}{{ not evaluated }}{% endraw %}
{% raw -%}  x  {%- endraw %}|)J",
     R"J({{ not evaluated }}x|)J"},
    {"Whitespace", R"J(line
)J",
     R"J(line)J"},
    {"Whitespace", R"J(a
b
{% if true %}
c{% endif %})J",
     R"J(a
b
c)J"},
    {"Whitespace", R"J({% for i in l %}
  {{ i }}
{% endfor %}
)J",
     R"J(  3
  1
  2
)J"},
    {"Whitespace", R"J({%- for i in l -%}
  {{ i }},
{%- endfor %})J",
     R"J(3,1,2,)J"},
    {"Whitespace", R"J({% set x = 1 %}  
{{ x }})J",
     R"J(  
1)J"},
    {"Filters", R"J({{ s|trim }}|{{ 'xxaxx'|trim('x') }})J",
     R"J(Hello World|a)J"},
    {"Filters", R"J({{ l|length }}{{ s|count }}{{ d|length }}{{ u|length }})J",
     R"J(31520)J"},
    {"Filters", R"J({{ d|tojson }}|{{ msgs[0]|tojson(indent=2) }}|{{ [1.0, 'é"\n', none, true]|tojson }}|{{ d|tojson(indent=4, sort_keys=true) }})J",
     R"J({"a": [1, 2], "b": 1}|{
  "content": "S",
  "role": "system"
}|[1.0, "é\"\n", null, true]|{
    "a": [
        1,
        2
    ],
    "b": 1
})J"},
    {"Filters", R"J({{ {'b': 1, 'a': 2}|tojson }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ {'x': {}, 'y': []}|tojson(indent=2) }}|{{ 'ü'|tojson(ensure_ascii=true) }}|{{ d|tojson(separators=(',', ':')) }})J",
     R"J({"b": 1, "a": 2}|{"a": 2, "b": 1}|{
  "x": {},
  "y": []
}|"\u00fc"|{"a":[1,2],"b":1})J"},
    {"Filters", R"J({{ s|upper }}|{{ s|lower }}|{{ 'hello wORLD-x(y'|title }}|{{ 'hELLO World'|capitalize }})J",
     R"J(  HELLO WORLD  |  hello world  |Hello World-X(Y|Hello world)J"},
    {"Filters", R"J({{ l|first }}{{ l|last }}{{ 'abc'|first }}{{ 'abc'|last }}[{{ e|first }}])J",
     R"J(32ac[])J"},
    {"Filters", R"J({{ l|join(', ') }}|{{ msgs|join('/', attribute='role') }}|{{ 'abc'|join('-') }})J",
     R"J(3, 1, 2|system/user/assistant/user|a-b-c)J"},
    {"Filters", R"J({{ u|default('dflt') }}|{{ none|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ u|d('x') }})J",
     R"J(dflt|None|dflt|x)J"},
    {"Filters", R"J({{ n|string ~ 1 }}|{{ '42'|int + 1 }}|{{ '3.9'|int }}|{{ 'x'|int(5) }}|{{ 2.7|int }}|{{ '2.5'|float }}|{{ 3|float }}|{{ 'q'|float }})J",
     R"J(71|43|3|5|2|2.5|3.0|0.0)J"},
    {"Filters", R"J({{ 'ab'|list }}|{{ d|list }}|{{ d|items|list }}|{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %})J",
     R"J(['a', 'b']|['a', 'b']|[('a', [1, 2]), ('b', 1)]|a=[1, 2];b=1;)J"},
    {"Filters", R"J({{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }})J",
     R"J(a+b+c|bba)J"},
    {"Filters", R"J({{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|{{ msgs|rejectattr('role', 'eq', 'user')|list|length }}|{{ [0, 1, '', 'x']|select|list }})J",
     R"J(U1,U2|2|[1, 'x'])J"},
    {"Filters", R"J({{ msgs|map(attribute='role')|list }}|{{ ['a', 'B']|map('upper')|list }}|{{ msgs|map(attribute='missing', default='-')|join }})J",
     R"J(['system', 'user', 'assistant', 'user']|['A', 'B']|----)J"},
    {"Filters", R"J({{ l|reverse|list }}|{{ 'abc'|reverse }}|{{ l|sort }}|{{ ['b', 'A', 'c']|sort }}|{{ l|sort(reverse=true) }}|{{ msgs|sort(attribute='content')|map(attribute='content')|join }})J",
     R"J([2, 1, 3]|cba|[1, 2, 3]|['A', 'b', 'c']|[3, 2, 1]|A1SU1U2)J"},
    {"Filters", R"J({{ '<a & b>'|safe }}|{{ '<a & "b">'|escape }}|{{ -3|abs }})J",
     R"J(<a & b>|&lt;a &amp; &#34;b&#34;&gt;|3)J"},
    {"Tests", R"J({{ u is defined }}{{ n is defined }}{{ u is undefined }}{{ none is none }}{{ n is none }})J",
     R"J(FalseTrueTrueTrueFalse)J"},
    {"Tests", R"J({{ s is string }}{{ n is string }}{{ d is mapping }}{{ l is mapping }}{{ l is iterable }}{{ n is iterable }}{{ s is sequence }}{{ u is iterable }})J",
     R"J(TrueFalseTrueFalseTrueFalseTrueTrue)J"},
    {"Tests", R"J({{ n is number }}{{ f is number }}{{ s is number }}{{ t is true }}{{ t is false }}{{ false is false }}{{ t is boolean }}{{ 1 is boolean }})J",
     R"J(TrueTrueFalseTrueFalseTrueTrueFalse)J"},
    {"Tests", R"J({{ n is integer }}{{ f is integer }}{{ f is float }}{{ n is float }}{{ t is integer }})J",
     R"J(TrueFalseTrueFalseFalse)J"},
    {"Tests", R"J({{ n is eq 7 }}{{ n is equalto(8) }}{{ n is odd }}{{ n is even }}{{ 9 is divisibleby 3 }}{{ 10 is divisibleby(3) }}{{ n is not odd }})J",
     R"J(TrueFalseTrueFalseTrueFalseFalse)J"},
    {"Tests", R"J({{ msgs|selectattr('content', 'in', ['U1', 'A1'])|list|length }}{{ 'a' is lower }}{{ 'A' is upper }}{{ n is gt 3 }}{{ n is lt 3 }})J",
     R"J(2TrueTrueTrueFalse)J"},
    {"Methods", R"J([{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '\n\nhi\n'.lstrip('\n') }}])J",
     R"J([Hello World][Hello World  ][  Hello World][hi][hi
])J"},
    {"Methods", R"J({{ 'a,b,,c'.split(',') }}{{ '  a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ 'x</think>y'.split('</think>')[-1] }})J",
     R"J(['a', 'b', '', 'c']['a', 'b']['a', 'b,c']['a,b', 'c']y)J"},
    {"Methods", R"J({{ s.startswith('  He') }}{{ s.endswith('x') }}{{ 'abc'.startswith(('x', 'a')) }}{{ 'a.b'.replace('.', '::') }}{{ 'Ab'.upper() }}{{ 'Ab'.lower() }})J",
     R"J(TrueFalseTruea::bABab)J"},
    {"Methods", R"J({{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.count('bc') }}|{{ '-'.join(['a', 'b']) }})J",
     R"J(Hello World|Hello|2|2|a-b)J"},
    {"Methods", R"J({% for k, v in d.items() %}{{ k }}:{{ v }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('b') }}|{{ d.get('z') }}|{{ d.get('z', 0) }})J",
     R"J(a:[1, 2];b:1;|['a', 'b']|[[1, 2], 1]|1|None|0)J"},
    {"Expressions", R"J({{ l[0] }}{{ l[-1] }}{{ l[1:] }}{{ l[:-1] }}{{ l[::-1] }}{{ l[::2] }}{{ 'hello'[1:3] }}{{ 'héllo'[::-1] }}{{ msgs[-1]['content'] }}{{ d.a[1] }})J",
     R"J(32[1, 2][3, 1][2, 1, 3][3, 2]elolléhU22)J"},
    {"Expressions", R"J({{ 1 + 2 * 3 }}|{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1.5e-7 }}|{{ 10 / 5 }}|{{ -n }})J",
     R"J(7|3.5|3|-4|2|1024|0.30000000000000004|1e+20|1.5e-07|2.0|-7)J"},
    {"Expressions", R"J({{ 'a' + 'b' }}|{{ 'a' ~ 1 ~ none ~ u ~ true }}|{{ [1] + [2] }}|{{ 'ab' * 2 }}|{{ 1 if n > 3 else 2 }}|{{ 'x' if u }}|{{ n > 3 and 'y' or 'z' }}|{{ none or 'fallback' }})J",
     R"J(ab|a1NoneTrue|[1, 2]|abab|1||y|fallback)J"},
    {"Expressions", R"J({{ 'ell' in 'hello' }}{{ 3 in l }}{{ 'a' in d }}{{ 'z' not in d }}{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ not u }}{{ not n }}{{ l == [3, 1, 2] }}{{ (1, 2) }})J",
     R"J(TrueTrueTrueTrueTrueTrueTrueFalseTrue(1, 2))J"},
    {"Expressions", R"J({{ 'it\'s' }}|{{ "q\"q" }}|{{ 'tab\there' }}|{{ '\u00e9\x41' }}|{{ 'a' 'b' }}|{{ {'k': [1, {'z': none}]} }}|{{ msgs[0] }}|{{ [none, true, 'x', 1.0] }})J",
     R"J(it's|q"q|tab	here|éA|ab|{'k': [1, {'z': None}]}|{'content': 'S', 'role': 'system'}|[None, True, 'x', 1.0])J"},
    {"Expressions", R"J({% for m in msgs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.cycle('a', 'b') }};{% endfor %})J",
     R"J(01TrueFalse44a;12FalseFalse43b;23FalseFalse42a;34FalseTrue41b;)J"},
    {"Expressions", R"J({% for m in msgs if m.role == 'user' %}{{ loop.index }}{{ m.content }}{% endfor %}|{% for x in e %}never{% else %}empty{% endfor %}|{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %})J",
     R"J(1U12U2|empty|02)J"},
    {"Expressions", R"J({% set x = 1 %}{% for i in l %}{% set x = i %}{{ x }}{% endfor %}{{ x }}|{% set ns = namespace(c=0) %}{% for i in l %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}|{% set a, b = 1, 2 %}{{ a }}{{ b }})J",
     R"J(3121|6|12)J"},
    {"Expressions", R"J({% set block %}in {{ n }}{% endset %}[{{ block }}]|{% if n == 1 %}one{% elif n == 7 %}seven{% else %}other{% endif %}|{{ range(2, 8, 3)|list }}|{{ namespace(a=1).a }}|{{ dict(x=1) }})J",
     R"J([in 7]|seven|[2, 5]|1|{'x': 1})J"},
    {"Expressions", R"J({{ (msgs|length - 1) }}|{{ -1|abs }}|{{ not n is odd }}|{{ messages is defined }}|{{ l|length > 2 }}|{{ [1,2,3][1:][0] }})J",
     R"J(3|1|False|False|True|2)J"},
    {"Undefined", R"J([{{ u }}][{{ d.missing }}][{{ d['missing'] }}][{{ l[10] }}][{{ msgs[0].nope }}]{{ u is defined }}{{ d.missing is defined }})J",
     R"J([][][][][]FalseFalse)J"},
    {"Undefined", R"J({% if u %}t{% else %}f{% endif %}{% for x in u %}x{% endfor %}{{ u|length }}{{ u|list }}{{ u == u }}{{ u != 'x' }}{{ 'a' in u }}[{{ u|trim }}][{{ u|upper }}][{{ u|join(',') }}])J",
     R"J(f0[]TrueTrueFalse[][][])J"},
    {"Undefined", R"J({{ u is iterable }}{{ u is sequence }}{{ u is mapping }}{{ u is none }}{{ u|string }}[{{ u|first }}]{{ u|items|list }})J",
     R"J(TrueTrueFalseFalse[][])J"},
};
// clang-format on
const char* const kUnitContext =
    R"J({"d": {"a": [1, 2], "b": 1}, "e": [], "f": 2.5, "l": [3, 1, 2], "msgs": [{"content": "S", "role": "system"}, {"content": "U1", "role": "user"}, {"content": "A1", "role": "assistant"}, {"content": "U2", "role": "user"}], "n": 7, "none": null, "s": "  Hello World  ", "t": true})J";

class JinjaUnit : public ::testing::TestWithParam<UnitCase> {};

TEST_P(JinjaUnit, RendersAsJinja2) {
  const UnitCase& c = GetParam();
  moe::ChatTemplate t = moe::ChatTemplate::parse(c.tpl, "unit");
  EXPECT_EQ(t.render(nlohmann::json::parse(kUnitContext)), c.expected) << "template: " << c.tpl;
}

INSTANTIATE_TEST_SUITE_P(All, JinjaUnit, ::testing::ValuesIn(kUnitCases),
                         [](const ::testing::TestParamInfo<UnitCase>& p) {
                           return std::string(p.param.group) + std::to_string(p.index);
                         });

}  // namespace
