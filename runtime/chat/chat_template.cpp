#include "runtime/chat/chat_template.h"

#include "runtime/chat/jinja/interpreter.h"
#include "runtime/chat/jinja/parser.h"
#include "runtime/chat/jinja/value.h"

namespace moe {

ChatTemplate ChatTemplate::parse(const std::string& source, const std::string& name) {
  return ChatTemplate(jinja::parse(source, name));
}

ChatTemplate::ChatTemplate(std::unique_ptr<jinja::Template> t) : template_(std::move(t)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return jinja::render(*template_, jinja::Value::from_json(context));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return jinja::render(*template_, jinja::Value::from_json(context));
}

}  // namespace moe
