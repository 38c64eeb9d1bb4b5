// ChatTemplate::render(ordered_json) keeps the caller's key order, as Python dicts do.
#include <gtest/gtest.h>

#include "runtime/chat/chat_template.h"

namespace moe {
namespace {

TEST(ChatTemplateContext, OrderedJsonKeepsKeyOrder) {
  const ChatTemplate t =
      ChatTemplate::parse("{{ tools | tojson }}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}");
  nlohmann::ordered_json ctx;
  ctx["tools"] = nlohmann::ordered_json::array({{{"name", "f"}, {"description", "d"}}});
  ctx["d"] = {{"z", 1}, {"a", 2}};
  // Expected as jinja2 renders it with transformers' tojson (json.dumps, ensure_ascii=False).
  EXPECT_EQ(t.render(ctx), R"([{"name": "f", "description": "d"}]|z=1;a=2;)");
  // nlohmann::json sorts keys, so the same context comes out sorted.
  EXPECT_EQ(t.render(nlohmann::json(ctx)), R"([{"description": "d", "name": "f"}]|a=2;z=1;)");
}

}  // namespace
}  // namespace moe
