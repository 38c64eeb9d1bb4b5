// Hostile templates (tests/fixtures/robustness/chat-*.jinja, found by fuzzing and by reading the
// interpreter; issue 16): each ends in one moe::Error, or in the bounded result jinja2 gives,
// never in undefined behaviour, a signal, a hang, a stack overflow or unbounded memory. Run
// under ASan+UBSan (and LSan for the namespace cycle) they must stay silent too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace {

namespace fs = std::filesystem;

std::string read_case(const std::string& name) {
  const fs::path p = fs::path(MOE_TEST_DATA_DIR) / "robustness" / name;
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "<rendered> <output>" or the moe::Error message, as `moe chat` would feed the template.
std::string outcome_of(const std::string& source) {
  try {
    const moe::ChatTemplate t = moe::ChatTemplate::parse(source, "tpl");
    const nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                {"add_generation_prompt", true},
                                {"bos_token", "<s>"},
                                {"eos_token", "</s>"}};
    return "<rendered> " + t.render(ctx);
  } catch (const moe::Error& e) {
    return e.what();
  }
}

std::string outcome(const std::string& name) {
  return outcome_of(read_case(name));
}

TEST(JinjaRobustness, IntegerOverflowIsAnError) {
  // Python's ints are unbounded; here they are 64-bit and never wrap.
  EXPECT_EQ(outcome("chat-ubsan-add-overflow.jinja"),
            "tpl:1:1: integer overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-sub-overflow.jinja"),
            "tpl:1:1: integer overflow: 9223372036854775807 - -1 does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-mul-overflow.jinja"),
            "tpl:1:1: integer overflow: 3037000500 * 3037000500 does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-negate-intmin.jinja"),
            "tpl:1:1: integer overflow: -(-9223372036854775808) does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-floordiv-intmin-by-minus1.jinja"),
            "tpl:1:1: integer overflow: -9223372036854775808 // -1 does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-pow-overflow.jinja"), "tpl:1:1: integer overflow: 888 ** 8 does not fit in 64 bits");
  EXPECT_EQ(outcome_of("{{ (-9223372036854775807 - 1) % -1 }}"), "<rendered> 0");
  EXPECT_EQ(outcome_of("{{ 9223372036854775807 % -2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -7 // 2 }}"),
            "<rendered> -1 2 -2 -4");
  EXPECT_EQ(outcome_of("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 3 ** 39 }}"),
            "<rendered> 4611686018427387904 -9223372036854775808 4052555153018976267");
  EXPECT_EQ(outcome_of("{{ 2 ** 63 }}"), "tpl:1:1: integer overflow: 2 ** 63 does not fit in 64 bits");
  EXPECT_EQ(outcome_of("{{ 99999999999999999999 }}"),
            "tpl:1:4: integer literal 99999999999999999999 does not fit in 64 bits");
  EXPECT_EQ(outcome_of("{{ (-9223372036854775807 - 1)|abs }}"),
            "tpl:1:1: integer overflow: abs(-9223372036854775808) does not fit in 64 bits");
  EXPECT_EQ(outcome_of("{{ (-9223372036854775807 - 1) is divisibleby(-1) }}"), "<rendered> True");
}

TEST(JinjaRobustness, FuzzerFindingsEndInAnError) {
  // Literals beyond 64 bits are refused at parse time (jinja2 renders them as big ints).
  EXPECT_EQ(
      outcome("chat-ubsan-add-overflow.fuzzer.jinja"),
      "tpl:1:129: integer literal 188888888888888888888888888888888888888888888888888888 does not fit in 64 bits");
  EXPECT_EQ(
      outcome("chat-ubsan-pow-overflow.fuzzer.jinja"),
      "tpl:1:125: integer literal 188888888888888888888888888888888888888888888888888888 does not fit in 64 bits");
  EXPECT_EQ(outcome("chat-ubsan-int-filter-float-cast.fuzzer.jinja"),
            "tpl:1:22: int: 9.223372036854776e+19 does not fit in a 64-bit integer");
  EXPECT_EQ(outcome("chat-timeout-pow-loop.fuzzer.jinja"), "tpl:1:492: 'A' is undefined");  // as jinja2 says
}

TEST(JinjaRobustness, IntOfHugeFloats) {
  EXPECT_EQ(outcome("chat-ubsan-int-filter-float-cast.jinja"), "tpl:1:1: int: 1e+300 does not fit in a 64-bit integer");
  EXPECT_EQ(outcome("chat-ubsan-int-filter-float-cast2.jinja"),
            "tpl:1:1: int: 1e+300 does not fit in a 64-bit integer");
  EXPECT_EQ(outcome_of("{{ '92233720368547758073'|int }}"),
            "tpl:1:1: int: '92233720368547758073' does not fit in a 64-bit integer");
  EXPECT_EQ(outcome_of("{{ -9.2e18|int }} {{ 3.9|int }} {{ -3.9|int }} {{ 'nan'|int(7) }}"),
            "<rendered> -9200000000000000000 3 -3 7");
}

TEST(JinjaRobustness, PowerBySquaring) {
  // 1 ** 100000000000 looped once per unit of the exponent; Python answers at once.
  EXPECT_EQ(outcome("chat-timeout-pow-loop.jinja"), "<rendered> 1");
  EXPECT_EQ(outcome_of("{{ 0 ** 100000000000 }} {{ (-1) ** 100000000001 }} {{ 7 ** 0 }}"), "<rendered> 0 -1 1");
}

TEST(JinjaRobustness, StepsThatWouldOverflow) {
  EXPECT_EQ(outcome("chat-ubsan-slice-step-overflow.jinja"), "<rendered> f");
  EXPECT_EQ(outcome("chat-ubsan-range-step-overflow.jinja"), "<rendered> [9223372036854775806]");
  EXPECT_EQ(outcome_of("{{ 'abcdef'[::-9223372036854775807] }}{{ 'abcdef'[::-9223372036854775807 - 1] }}"),
            "<rendered> ff");
  EXPECT_EQ(outcome_of("{{ range(-9223372036854775807 - 1, 9223372036854775807, 9223372036854775807)|list }}"),
            "<rendered> [-9223372036854775808, -1, 9223372036854775806]");
  EXPECT_EQ(outcome_of("{{ range(5, -9223372036854775807 - 1, -9223372036854775807 - 1)|list }}"),
            "<rendered> [5, -9223372036854775803]");
  EXPECT_EQ(outcome_of("{{ range(0, 9223372036854775807)|list }}"),
            "tpl:1:1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
}

TEST(JinjaRobustness, RepetitionAndOutputAreBounded) {
  EXPECT_EQ(outcome("chat-timeout-string-repeat.jinja"),
            "tpl:1:1: string repetition makes more than 67108864 bytes (1 x 100000000000)");
  EXPECT_EQ(outcome("chat-oom-list-repeat.jinja"),
            "tpl:1:1: list repetition makes more than 1048576 items (1 x 10000000000)");
  EXPECT_EQ(outcome("chat-oom-tojson-indent.jinja"),
            "tpl:1:1: tojson output would be more than the limit of 67108864 bytes (indent 100000000000)");
  EXPECT_EQ(outcome_of("{{ 'ab' * 3 }}|{{ 'ab' * -2 }}|{{ [1, 2] * 2 }}|{{ 2 * (1,) }}"),
            "<rendered> ababab||[1, 2, 1, 2]|(1, 1)");
  EXPECT_EQ(outcome_of("{{ [1]|tojson(indent=3) }}"), "<rendered> [\n   1\n]");
  // Doubling a string in a loop, and output written piece by piece.
  EXPECT_EQ(outcome_of("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                       "{% endfor %}"),
            "tpl:1:59: string concatenation would be 134217728 bytes, more than the limit of 67108864 bytes");
  EXPECT_EQ(outcome_of("{% set s = 'x' * 60000000 %}{% for i in range(3) %}{{ s }}{% endfor %}"),
            "tpl:1:52: the rendered output exceeds the limit of 67108864 bytes");
  EXPECT_EQ(outcome_of("{{ ('x' * 40000000).replace('', 'yy') }}"),
            "tpl:1:1: replace would be 67108866 bytes, more than the limit of 67108864 bytes");
}

TEST(JinjaRobustness, LoopIterationsAreBounded) {
  // range(100000) inside range(100000): 10^10 iterations.
  EXPECT_EQ(outcome("chat-timeout-nested-range.jinja"),
            "tpl:1:32: the template runs more than 2097152 loop iterations in all");
  EXPECT_EQ(outcome_of("{% for i in range(500) %}{% for j in range(500) %}{% endfor %}{% endfor %}."), "<rendered> .");
}

TEST(JinjaRobustness, ParserNestingIsBounded) {
  EXPECT_EQ(outcome("chat-stackoverflow-deep-parens.jinja"), "tpl:1:260: template nested deeper than 256 levels");
  EXPECT_NE(outcome("chat-stackoverflow-deep-not.jinja").find("template nested deeper than 256 levels"),
            std::string::npos);
  // Chains built by loops in the parser (left-deep trees) and nested blocks.
  std::string sum = "{{ 1";
  for (int i = 0; i < 100000; ++i) sum += " + 1";
  EXPECT_NE(outcome_of(sum + " }}").find("expression nested deeper than 256 levels"), std::string::npos);
  std::string ifs;
  for (int i = 0; i < 100000; ++i) ifs += "{% if true %}";
  EXPECT_NE(outcome_of(ifs).find("template nested deeper than 256 levels"), std::string::npos);
  std::string filters = "{{ 'a'";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_NE(outcome_of(filters + " }}").find("expression nested deeper than 256 levels"), std::string::npos);
  // What real templates do is far below the limits.
  std::string parens = "{{ ";
  for (int i = 0; i < 50; ++i) parens += "(";
  parens += "1";
  for (int i = 0; i < 50; ++i) parens += " + 1)";
  EXPECT_EQ(outcome_of(parens + " }}"), "<rendered> 51");
}

TEST(JinjaRobustness, NamespaceThatContainsItself) {
  // jinja2 prints the inner reference as reprlib does; LSan checks that the cycle is freed.
  EXPECT_EQ(outcome("chat-stackoverflow-namespace-cycle.jinja"), "<rendered> <Namespace {'a': <Namespace {...}>}>");
  EXPECT_EQ(outcome("chat-leak-namespace-cycle.jinja"), "<rendered> x");
  EXPECT_EQ(outcome_of("{% set ns = namespace(a=1) %}{% set ns.b = {'n': ns, 'l': [ns]} %}{{ ns }}"),
            "<rendered> <Namespace {'a': 1, 'b': {'n': <Namespace {...}>, 'l': [<Namespace {...}>]}}>");
}

TEST(JinjaRobustness, DeepValuesAreBounded) {
  // A list wrapped 100000 times: refused at 512 levels (repr, tojson and the destructor recurse).
  EXPECT_EQ(outcome_of("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
                       "{% endfor %}"),
            "tpl:1:62: value nested deeper than 512 levels");
  // A chain of 100000 namespaces built by assignment: freed without recursing; repr refuses it.
  const std::string chain =
      "{% set h = namespace(cur=namespace(), first=none) %}{% set h.first = h.cur %}"
      "{% for i in range(100000) %}{% set n = namespace() %}{% set c = h.cur %}{% set c.next = n %}{% set h.cur = n %}"
      "{% endfor %}";
  EXPECT_EQ(outcome_of(chain + "ok"), "<rendered> ok");
  EXPECT_NE(outcome_of(chain + "{{ h.first }}").find("repr: value nested deeper than 512 levels"), std::string::npos);
  nlohmann::json deep = 1;
  for (int i = 0; i < 600; ++i) deep = nlohmann::json::array({deep});
  const moe::ChatTemplate t = moe::ChatTemplate::parse("{{ x|length }}", "tpl");
  try {
    t.render(nlohmann::json{{"x", deep}});
    ADD_FAILURE() << "a context nested 600 levels deep was accepted";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 512 levels"), std::string::npos) << e.what();
  }
}

}  // namespace
