// moe tokenize: text on stdin -> token ids, or ids -> text with --decode, with the model's own
// tokenizer.json; for checking against other tools (tests/tokenizer/parity.py).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/model/gguf_source.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string tokenizer;
  bool decode = false;
  bool lines = false;
  bool no_special = false;
  bool skip_special = false;
  bool bench = false;
};

Tokenizer load(const TokenizeOptions& o) {
  const std::filesystem::path path(o.tokenizer.empty() ? o.model : o.tokenizer);
  if (std::filesystem::is_directory(path)) return Tokenizer::load(path);
  if (is_gguf_model(path)) {  // a GGUF file's tokenizer.ggml.* metadata
    std::optional<Tokenizer> t = load_model_tokenizer(path);
    if (!t) fail(path.string(), ": this GGUF file has no tokenizer (no tokenizer.ggml.tokens)");
    return std::move(*t);
  }
  // A tokenizer.json file: its tokenizer_config.json, if any, sits beside it.
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) fail(p.string(), ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  const std::filesystem::path config = path.parent_path() / "tokenizer_config.json";
  return Tokenizer::from_json(read(path), std::filesystem::exists(config) ? read(config) : std::string(), path);
}

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) fail("moe tokenize --decode: '", word, "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void print_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
}

int tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = load(o);
  std::ostringstream all;
  all << std::cin.rdbuf();
  const std::string input = all.str();
  std::vector<std::string> items;
  if (o.lines) {
    std::istringstream in(input);
    for (std::string line; std::getline(in, line);) items.push_back(line);
  } else {
    items.push_back(input);
  }
  if (o.decode) {
    for (const std::string& item : items) {
      const std::string text = tok.decode(parse_ids(item), o.skip_special);
      std::fwrite(text.data(), 1, text.size(), stdout);
      if (o.lines) std::fputc('\n', stdout);
    }
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0, tokens = 0;
  for (const std::string& item : items) {
    const std::vector<int32_t> ids = tok.encode(item, !o.no_special);
    bytes += item.size();
    tokens += ids.size();
    if (!o.bench) print_ids(ids);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.bench) std::printf("encode_bytes=%zu tokens=%zu seconds=%.6f\n", bytes, tokens, seconds);
  return 0;
}

}  // namespace

Action add_tokenize_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Encode text read from stdin into token ids with a model's tokenizer.json (ids printed space-separated),\n"
      "or decode ids back into text with --decode. Agrees exactly with Hugging Face `tokenizers`.");
  auto o = std::make_shared<TokenizeOptions>();
  auto* model = cmd->add_option("--model,-m", o->model, "Model directory holding tokenizer.json, or a GGUF file");
  auto* tokenizer = cmd->add_option("--tokenizer", o->tokenizer, "A tokenizer.json file or the directory holding it");
  model->excludes(tokenizer);
  cmd->add_flag("--decode", o->decode, "Read token ids (whitespace-separated) and print the text");
  cmd->add_flag("--lines", o->lines, "Treat each input line separately: one line of ids (or text) per line");
  cmd->add_flag("--no-special", o->no_special, "Encode without the post-processor's special tokens (e.g. BOS)");
  cmd->add_flag("--skip-special", o->skip_special, "With --decode: leave special tokens out of the text");
  cmd->add_flag("--bench", o->bench, "Print 'encode_bytes=N tokens=T seconds=S' instead of the ids");
  return [o, model, tokenizer] {
    if (model->count() == 0 && tokenizer->count() == 0) fail("moe tokenize: give --model DIR or --tokenizer PATH");
    return tokenize(*o);
  };
}

}  // namespace moe::cli
