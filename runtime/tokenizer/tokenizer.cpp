// Loading tokenizer.json / tokenizer_config.json and the encode/decode pipeline.
#include "runtime/tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/json_limits.h"
#include "runtime/tokenizer/added_vocabulary.h"
#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/decoders.h"
#include "runtime/tokenizer/json_util.h"
#include "runtime/tokenizer/normalizers.h"
#include "runtime/tokenizer/post_processor.h"
#include "runtime/tokenizer/pre_tokenizers.h"
#include "runtime/tokenizer/utf8.h"

namespace moe {

using nlohmann::json;

class TokenizerImpl {
 public:
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Bpe> model;
  tok::AddedVocabulary added;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  std::string bos_token, eos_token, chat_template;

  std::optional<int32_t> token_to_id(std::string_view t) const {
    if (const auto* a = added.find(t)) return a->id;
    return model->token_to_id(t);
  }
};

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.string(), ": cannot open");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

json parse(const std::string& text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(where, ": not valid JSON: ", e.what());
  }
}

// bos_token / eos_token: a string, {"content": ...} or null.
std::string config_token(const json& cfg, const char* key, const std::string& where) {
  const auto* it = tok::child(cfg, key);
  if (!it || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return tok::get_string_or(*it, "content", "", where + ": " + key);
  fail(where, ": '", key, "' must be a string or {\"content\": ...}");
}

std::vector<tok::AddedToken> parse_added_tokens(const json& root, const tok::Bpe& model, const std::string& where) {
  std::vector<tok::AddedToken> out;
  const auto* it = tok::child(root, "added_tokens");
  if (!it || it->is_null()) return out;
  if (!it->is_array()) fail(where, ": added_tokens must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& t = (*it)[i];
    const std::string w = str_cat(where, ": added_tokens[", i, "]");
    if (!t.is_object()) fail(w, ": expected an object");
    tok::AddedToken a;
    a.content = tok::get_string(t, "content", w);
    const auto* id = tok::child(t, "id");
    if (!id || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() > tok::kMaxTokenId)
      fail(w, ": missing or bad 'id' (an integer in [0, ", tok::kMaxTokenId, "])");
    // As tokenizers' add_tokens: a token the model already has keeps the model's id.
    a.id = model.token_to_id(a.content).value_or(id->get<int32_t>());
    a.single_word = tok::get_bool(t, "single_word", false, w);
    a.lstrip = tok::get_bool(t, "lstrip", false, w);
    a.rstrip = tok::get_bool(t, "rstrip", false, w);
    a.special = tok::get_bool(t, "special", false, w);
    a.normalized = tok::get_bool(t, "normalized", !a.special, w);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  const auto tj = dir / "tokenizer.json";
  const auto cj = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(tj)) fail(tj.string(), ": no such file");
  const std::string config = std::filesystem::exists(cj) ? read_file(cj) : std::string();
  return from_json(read_file(tj), config, tj);
}

Tokenizer Tokenizer::from_json(const std::string& tokenizer_json, const std::string& config_json,
                               const std::filesystem::path& source) {
  const std::string where = source.string();
  const std::string cfg_where = source.filename() == "tokenizer.json"
                                    ? (source.parent_path() / "tokenizer_config.json").string()
                                    : where + " (tokenizer_config.json)";
  const json root = parse(tokenizer_json, where);
  if (!root.is_object()) fail(where, ": expected a JSON object");
  auto impl = std::make_unique<TokenizerImpl>();

  const auto* m = tok::child(root, "model");
  if (!m || !m->is_object()) fail(where, ": missing object 'model'");
  const std::string model_type = m->contains("type") ? tok::get_string(*m, "type", where + ": model") : "BPE";
  if (model_type != "BPE") fail(where, ": model.type '", model_type, "' is not supported (only BPE)");
  impl->model = std::make_unique<tok::Bpe>(*m, where + ": model");

  const auto field = [&](const char* key) -> const json& {
    static const json null_json;
    const auto* it = tok::child(root, key);
    return it ? *it : null_json;
  };
  impl->normalizer = tok::make_normalizer(field("normalizer"), where + ": normalizer");
  impl->pre_tokenizer = tok::make_pre_tokenizer(field("pre_tokenizer"), where + ": pre_tokenizer");
  impl->post_processor = tok::PostProcessor::from_json(field("post_processor"), where + ": post_processor");
  impl->decoder = tok::make_decoder(field("decoder"), where + ": decoder");
  impl->added.build(parse_added_tokens(root, *impl->model, where), impl->normalizer.get());

  if (!config_json.empty()) {
    const json cfg = parse(config_json, cfg_where);
    if (!cfg.is_object()) fail(cfg_where, ": expected a JSON object");
    impl->bos_token = config_token(cfg, "bos_token", cfg_where);
    impl->eos_token = config_token(cfg, "eos_token", cfg_where);
    if (const auto* ct = tok::child(cfg, "chat_template"); ct && !ct->is_null()) {
      if (ct->is_string()) {
        impl->chat_template = ct->get<std::string>();
      } else if (ct->is_array()) {
        for (const auto& t : *ct) {
          if (tok::get_string_or(t, "name", "", cfg_where) == "default") {
            impl->chat_template = tok::get_string_or(t, "template", "", cfg_where);
          }
        }
      } else {
        fail(cfg_where, ": chat_template must be a string or a list of {name, template}");
      }
    }
    if (!impl->post_processor) {
      std::vector<int32_t> bos, eos;
      const auto want = [&](const char* flag, const std::string& token, std::vector<int32_t>& ids) {
        if (!tok::get_bool(cfg, flag, false, cfg_where) || token.empty()) return;
        const auto id = impl->token_to_id(token);
        if (!id) fail(cfg_where, ": ", flag, " is set but '", token, "' is not in the vocabulary");
        ids.push_back(*id);
      };
      want("add_bos_token", impl->bos_token, bos);
      want("add_eos_token", impl->eos_token, eos);
      if (!bos.empty() || !eos.empty()) impl->post_processor = tok::PostProcessor::bos_eos(bos, eos);
    }
  }
  return Tokenizer(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string lossy;
  if (!tok::is_valid_utf8(text)) {  // Rust strings are always valid: repair as from_utf8_lossy
    lossy = tok::from_utf8_lossy(text);
    text = lossy;
  }
  thread_local std::vector<tok::AddedSplit> splits;
  thread_local std::vector<tok::Piece> pieces, scratch;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->added.extract_and_normalize(text, impl_->normalizer.get(), splits);
  for (auto& sp : splits) {
    if (sp.id >= 0) {
      ids.push_back(sp.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(std::move(sp.piece));
    if (impl_->pre_tokenizer) impl_->pre_tokenizer->pre_tokenize(pieces, scratch);
    for (const auto& p : pieces) impl_->model->tokenize(p.text, ids);
  }
  if (add_special_tokens && impl_->post_processor) impl_->post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (const auto* a = impl_->added.find(id)) {
      if (!(skip_special_tokens && a->special)) tokens.push_back(a->content);
    } else if (const std::string* t = impl_->model->id_to_token(id)) {
      tokens.push_back(*t);
    } else {
      fail("decode: token id ", id, " at index ", i, " is outside the vocabulary [0, ", vocab_size(), ")");
    }
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  impl_->decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

int64_t Tokenizer::vocab_size() const {
  return std::max<int64_t>(impl_->model->max_id(), impl_->added.max_id()) + 1;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  return impl_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const auto* a = impl_->added.find(id)) return a->content;
  const std::string* t = impl_->model->id_to_token(id);
  return t ? *t : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  return impl_->added.is_special(id);
}
std::string Tokenizer::bos_token() const {
  return impl_->bos_token;
}
std::string Tokenizer::eos_token() const {
  return impl_->eos_token;
}
std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->bos_token.empty() ? std::nullopt : impl_->token_to_id(impl_->bos_token);
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->eos_token.empty() ? std::nullopt : impl_->token_to_id(impl_->eos_token);
}
const std::string& Tokenizer::chat_template() const {
  return impl_->chat_template;
}

}  // namespace moe
