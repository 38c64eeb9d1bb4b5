#include "runtime/tokenizer/json_util.h"

#include "runtime/core/error.h"

namespace moe::tok {

void check_sequence_nesting(int depth, const std::string& where) {
  if (depth > kMaxSequenceNesting) fail(where, ": Sequence nested deeper than ", kMaxSequenceNesting, " levels");
}

const nlohmann::json* child(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return nullptr;
  return &j.at(key);
}

std::string get_type(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected an object, got ", j.type_name());
  const auto* it = child(j, "type");
  if (!it || !it->is_string()) fail(where, ": missing string field 'type'");
  return it->get<std::string>();
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto* it = child(j, key);
  if (!it || !it->is_string()) fail(where, ": missing string field '", key, "'");
  return it->get<std::string>();
}

std::string get_string_or(const nlohmann::json& j, const char* key, const std::string& dflt, const std::string& where) {
  const auto* it = child(j, key);
  if (!it || it->is_null()) return dflt;
  if (!it->is_string()) fail(where, ": field '", key, "' must be a string");
  return it->get<std::string>();
}

bool get_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& where) {
  const auto* it = child(j, key);
  if (!it || it->is_null()) return dflt;
  if (!it->is_boolean()) fail(where, ": field '", key, "' must be a boolean");
  return it->get<bool>();
}

int64_t get_int(const nlohmann::json& j, const char* key, int64_t dflt, const std::string& where) {
  const auto* it = child(j, key);
  if (!it || it->is_null()) return dflt;
  if (!it->is_number_integer()) fail(where, ": field '", key, "' must be an integer");
  return it->get<int64_t>();
}

const nlohmann::json& get_array(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto* it = child(j, key);
  if (!it || !it->is_array()) fail(where, ": missing array field '", key, "'");
  return *it;
}

Pattern Pattern::from_json(const nlohmann::json& component, const std::string& where) {
  const auto* it = child(component, "pattern");
  if (!it || !it->is_object()) fail(where, ": missing object field 'pattern'");
  Pattern p;
  if (const auto* s = child(*it, "String"); s && s->is_string()) {
    p.literal_ = s->get<std::string>();
  } else if (const auto* r = child(*it, "Regex"); r && r->is_string()) {
    p.regex_.emplace(r->get<std::string>(), where);
  } else {
    fail(where, ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
  }
  return p;
}

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  if (regex_) return regex_->find_all(text, out);
  out.clear();
  if (literal_.empty()) return;
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::vector<std::pair<size_t, size_t>> m;
  find_all(text, m);
  if (m.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + m.size() * content.size());
  size_t prev = 0;
  for (const auto& [s, e] : m) {
    out.append(text.substr(prev, s - prev));
    out.append(content);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace moe::tok
