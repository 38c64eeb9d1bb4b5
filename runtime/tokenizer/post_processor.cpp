#include "runtime/tokenizer/post_processor.h"

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"
#include "runtime/tokenizer/json_util.h"

namespace moe::tok {
namespace {

// Real templates hold the input once ($A); a few copies are allowed, as tokenizers allows them.
constexpr uint64_t kMaxInputCopies = 16;

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::from_json(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  auto p = std::make_unique<PostProcessor>();
  p->parse(j, where, 0);
  return p;
}

void PostProcessor::parse(const nlohmann::json& j, const std::string& where, int depth) {
  const std::string type = get_type(j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    check_sequence_nesting(depth + 1, w);
    const auto& items = get_array(j, "processors", w);
    for (size_t i = 0; i < items.size(); ++i) parse(items[i], str_cat(where, ".processors[", i, "]"), depth + 1);
    return;
  }
  if (type != "TemplateProcessing") fail(where, ": post_processor type '", type, "' is not supported");
  const auto& single = get_array(j, "single", w);
  const auto* sp = child(j, "special_tokens");
  std::vector<Item> items;
  uint64_t copies = 0;
  for (const auto& piece : single) {
    if (const auto* s = child(piece, "Sequence")) {
      const std::string id = get_string(*s, "id", w);
      MOE_CHECK(id == "A", w, ": the single template may only use sequence 'A', not '", id, "'");
      items.push_back({true, {}});
      ++copies;
    } else if (const auto* t = child(piece, "SpecialToken")) {
      const std::string id = get_string(*t, "id", w);
      if (!sp || !child(*sp, id.c_str())) {
        fail(w, ": special token '", id, "' is missing from special_tokens");
      }
      Item item;
      for (const auto& v : get_array(sp->at(id), "ids", w)) {
        MOE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxTokenId, w,
                  ": special token '", id, "' has a bad id ", json_excerpt(v));
        item.ids.push_back(v.get<int32_t>());
      }
      items.push_back(std::move(item));
    } else {
      fail(w, ": template piece ", json_excerpt(piece), " is neither Sequence nor SpecialToken");
    }
  }
  // No overflow: input_copies_ <= kMaxInputCopies before and copies <= single.size().
  input_copies_ = copies == 0 ? 0 : input_copies_ * copies;
  MOE_CHECK(input_copies_ <= kMaxInputCopies, w, ": the templates copy the input ", input_copies_,
            " times in all; at most ", kMaxInputCopies, " copies are supported");
  templates_.push_back(std::move(items));
}

void PostProcessor::process(std::vector<int32_t>& ids) const {
  for (const auto& tmpl : templates_) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& item : tmpl) {
      if (item.sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    ids.swap(out);
  }
}

std::unique_ptr<PostProcessor> PostProcessor::bos_eos(std::vector<int32_t> bos, std::vector<int32_t> eos) {
  auto p = std::make_unique<PostProcessor>();
  std::vector<Item> items;
  if (!bos.empty()) items.push_back({false, std::move(bos)});
  items.push_back({true, {}});
  if (!eos.empty()) items.push_back({false, std::move(eos)});
  p->templates_.push_back(std::move(items));
  return p;
}

}  // namespace moe::tok
