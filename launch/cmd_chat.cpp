// moe chat: an interactive multi-turn chat in the terminal. Each turn renders the model's own
// chat template over the whole history, and the Session reuses the KV cache for the part of the
// prompt it already holds, so a turn only prefills what is new.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "launch/commands.h"
#include "launch/distributed.h"
#include "launch/engine.h"
#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"
#include "runtime/engine/session.h"

namespace moe::cli {
namespace {

struct ChatOptions {
  EngineOptions engine;
  SamplingParams sampling{.temperature = 0.7f, .top_k = 0, .top_p = 0.9f, .seed = 0};
  int64_t max_new_tokens = 512;
  int64_t context = 0;
  std::string system;
  bool stats = false;
};

constexpr const char* kHelp =
    "commands: /reset (new conversation), /stats (toggle stats after each reply), /help, /quit; Ctrl-D ends\n";

// Reads one message: a line, continued while it ends with a backslash. False at end of input.
bool read_message(bool interactive, std::string& out) {
  out.clear();
  if (interactive) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\\') {
      out += line.substr(0, line.size() - 1) + "\n";
      if (interactive) std::fputs(". ", stdout), std::fflush(stdout);
      continue;
    }
    out += line;
    return true;
  }
  return !out.empty();
}

class Chat {
 public:
  Chat(const ChatOptions& o, Engine& e, const Tokenizer& tok, const ChatTemplate& tmpl)
      : o_(o), e_(e), tok_(tok), tmpl_(tmpl), session_(*e.transformer, *e.cache, e.config().vocab_size) {
    reset();
  }

  void reset() {
    history_ = nlohmann::ordered_json::array();
    if (!o_.system.empty()) history_.push_back({{"role", "system"}, {"content", o_.system}});
    session_.reset();
  }

  // One user turn: render, generate while streaming, and keep the reply in the history.
  void turn(const std::string& user) {
    history_.push_back({{"role", "user"}, {"content", user}});
    const nlohmann::ordered_json context = {{"messages", history_},
                                            {"add_generation_prompt", true},
                                            {"bos_token", tok_.bos_token()},
                                            {"eos_token", tok_.eos_token()}};
    std::vector<int32_t> prompt;
    try {
      // As transformers' apply_chat_template: the template writes BOS itself, so no specials.
      prompt = tok_.encode(tmpl_.render(context), /*add_special_tokens=*/false);
      if (static_cast<int64_t>(prompt.size()) + 1 > session_.capacity())
        fail("the conversation (", prompt.size(), " tokens) no longer fits the context of ", session_.capacity(),
             " tokens; /reset starts a new one (or raise --ctx-size)");
    } catch (const Error&) {
      history_.erase(history_.end() - 1);
      throw;
    }
    GenerationOptions g;
    g.sampling = o_.sampling;
    g.sampling.seed = o_.sampling.seed + turns_++;
    g.max_new_tokens = std::min<int64_t>(o_.max_new_tokens, session_.capacity() - static_cast<int64_t>(prompt.size()));
    g.stop_ids = e_.stop_ids();
    StreamingDecoder text(tok_);
    const GenerationResult r = session_.generate(prompt, g, [&](int32_t id) {
      const std::string piece = text.push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    const std::string rest = text.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);

    std::vector<int32_t> reply = r.tokens;
    if (r.stop_reason == "eos" && !reply.empty()) reply.pop_back();
    history_.push_back({{"role", "assistant"}, {"content", tok_.decode(reply, /*skip_special_tokens=*/true)}});
    if (o_.stats) print_stats(stderr, e_, r, g.sampling, session_.reused_tokens());
  }

  void toggle_stats() { o_.stats = !o_.stats; }
  bool stats() const { return o_.stats; }

 private:
  ChatOptions o_;
  Engine& e_;
  const Tokenizer& tok_;
  const ChatTemplate& tmpl_;
  Session session_;
  nlohmann::ordered_json history_;
  uint64_t turns_ = 0;
};

int converse(const ChatOptions& o, Engine& engine, const Tokenizer& tok, const ChatTemplate& tmpl, int64_t context);

int chat(const ChatOptions& o) {
  o.sampling.validate();
  std::unique_ptr<Engine> e = load_engine(o.engine);
  const Tokenizer& tok = e->require_tokenizer("moe chat");
  if (tok.chat_template().empty())
    fail(o.engine.model_dir, "/tokenizer_config.json: the model has no chat_template; use `moe run --prompt` instead");
  const ChatTemplate tmpl = ChatTemplate::parse(tok.chat_template(), o.engine.model_dir + "/tokenizer_config.json");
  const int64_t context =
      o.context > 0 ? o.context : std::min<int64_t>(4096, std::max<int64_t>(e->config().max_position_embeddings, 64));
  e->prepare(context);
  if (!e->dist) return converse(o, *e, tok, tmpl, context);
  // Under mpirun: rank 0 reads the terminal and prints; the others serve its forward calls.
  return run_or_abort(*e, [&] {
    if (e->is_worker()) {
      e->serve_forward();
      return 0;
    }
    const int rc = converse(o, *e, tok, tmpl, context);
    e->finish_forward();
    return rc;
  });
}

int converse(const ChatOptions& o, Engine& engine, const Tokenizer& tok, const ChatTemplate& tmpl, int64_t context) {
  Engine* e = &engine;
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive)
    std::fprintf(stderr, "moe chat: %s, context %lld tokens, %s\n%s", e->config().summary().c_str(),
                 static_cast<long long>(context), o.sampling.describe().c_str(), kHelp);
  Chat session(o, *e, tok, tmpl);
  std::string message;
  while (read_message(interactive, message)) {
    if (message == "/quit" || message == "/exit") break;
    if (message == "/help") {
      std::fputs(kHelp, stderr);
    } else if (message == "/reset") {
      session.reset();
      std::fputs("(new conversation)\n", stderr);
    } else if (message == "/stats") {
      session.toggle_stats();
      std::fprintf(stderr, "(stats %s)\n", session.stats() ? "on" : "off");
    } else if (!message.empty()) {
      try {
        session.turn(message);
      } catch (const Error& err) {
        std::fflush(stdout);
        std::fprintf(stderr, "moe: error: %s\n", err.what());
      }
    }
  }
  if (interactive) std::fputc('\n', stdout);
  return 0;
}

}  // namespace

Action add_chat_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "chat",
      "Chat with a model in the terminal: each line you type is a user message; replies stream as they are\n"
      "generated. The model's own chat template (tokenizer_config.json) formats the conversation, and the\n"
      "KV cache is reused across turns. End a line with \\ to continue the message on the next line.");
  auto o = std::make_shared<ChatOptions>();
  add_engine_options(*cmd, o->engine);
  add_sampling_options(*cmd, o->sampling);
  cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "Longest reply, in tokens")->capture_default_str();
  cmd->add_option("--ctx-size,-c", o->context, "Context (KV cache) size in tokens; default min(4096, model's)");
  cmd->add_option("--system", o->system, "A system message to start every conversation with");
  cmd->add_flag("--stats", o->stats, "Print the stats block after each reply (toggle with /stats)");
  return [o] { return chat(*o); };
}

}  // namespace moe::cli
