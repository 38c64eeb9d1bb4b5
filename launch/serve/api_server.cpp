#include "launch/serve/api_server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>

#include "launch/serve/connection.h"
#include "launch/serve/generation_job.h"
#include "launch/serve/openai_response.h"
#include "runtime/core/error.h"

namespace moe::serve {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
constexpr auto kPoll = std::chrono::milliseconds(50);

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = {},
                const std::string& code = {}) {
  res.status = status;
  res.set_content(dump(error_body(status, message, param, code)), "application/json");
}

// The finish reason OpenAI clients know ("stop" or "length").
std::string api_finish(FinishReason f) {
  return f == FinishReason::kLength ? "length" : "stop";
}

// Runs `handler`; a request error it raises becomes its OpenAI-style answer. False when one did.
template <class F>
bool answer_errors(httplib::Response& res, F&& handler) {
  try {
    handler();
    return true;
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.what(), e.param(), e.code());
  } catch (const nlohmann::json::exception& e) {
    send_error(res, 400, str_cat("bad request: ", e.what()));
  } catch (const Error& e) {
    send_error(res, 400, e.what());
  }
  return false;
}

// A finished choice's tokens in the usage: each prompt counts once however many samples it has.
void count_usage(Usage& u, const JobEvent& e, int n) {
  if (e.choice % n == 0) u.prompt_tokens += e.prompt_tokens;
  u.completion_tokens += e.completion_tokens;
}

bool protected_path(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

}  // namespace

struct ApiServer::Impl {
  explicit Impl(ServeOptions o) : options(std::move(o)) {}

  ServeOptions options;
  httplib::Server http;
  std::atomic<bool> ready{false};
  std::atomic<bool> shutting_down{false};
  ServeTarget target;  // written once, before `ready`
  ServerMetrics metrics;

  void routes();
  void generation(const httplib::Request& req, httplib::Response& res, bool chat);
  void answer_whole(const std::shared_ptr<GenerationJob>& job, int fd, httplib::Response& res);
  void answer_stream(const std::shared_ptr<GenerationJob>& job, int fd, httplib::Response& res);
  ojson models_entry() const;
};

void ApiServer::Impl::routes() {
  http.new_task_queue = [n = options.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_timeout(5);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  http.set_tcp_nodelay(true);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!protected_path(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    if (!options.api_key.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      if (auth.empty()) {
        send_error(res, 401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", {},
                   "invalid_api_key");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (auth != "Bearer " + options.api_key) {
        send_error(res, 401, "Incorrect API key provided.", {}, "invalid_api_key");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!ready) {
      send_error(res, 503, "the model is still loading; GET /health answers 200 once it is ready");
      res.set_header("Retry-After", "5");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Bodies for errors httplib raises itself (unknown route, body too large, bad request line).
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, 404, str_cat("Unknown route: ", req.method, " ", req.path), {}, "not_found");
    else if (res.status == 413)
      send_error(res, 413,
                 str_cat("the request body is larger than the server's limit of ", options.max_body_bytes, " bytes"));
    else
      send_error(res, res.status, str_cat("HTTP error ", res.status));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, str_cat("internal error: ", what));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.http_response(res.status);
    if (options.access_log)
      std::fprintf(stderr, "moe serve: %s %s %s -> %d\n", req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(),
                   res.status);
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (!ready) {
      send_error(res, 503, "the model is still loading");
      return;
    }
    if (shutting_down) {
      send_error(res, 503, "the server is shutting down");
      return;
    }
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(ojson{{"version", MOE_VERSION}}), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    BatchEngineStats stats;
    std::vector<ExtraGauge> extra;
    if (ready) {
      stats = target.engine->stats();
      if (target.extra_gauges) extra = target.extra_gauges();
    }
    res.set_content(metrics.render(stats, target.kv_block_bytes, extra), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(ojson{{"object", "list"}, {"data", ojson::array({models_entry()})}}), "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const ServedModel& m = target.model;
    if (name != m.name && std::find(m.aliases.begin(), m.aliases.end(), name) == m.aliases.end()) {
      send_error(res, 404, str_cat("The model `", name, "` does not exist."), "model", "model_not_found");
      return;
    }
    res.set_content(dump(models_entry()), "application/json");
  });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generation(req, res, false); });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { generation(req, res, true); });

  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    answer_errors(res, [&] {
      const json body = parse_body(req.body);
      const ServedModel& m = target.model;
      check_model(body, m);
      std::vector<int32_t> ids;
      if (body.contains("messages")) {
        const bool gen = body.value("add_generation_prompt", true);
        ids = render_chat(body["messages"], m, gen);
      } else {
        if (!body.contains("prompt") || !body["prompt"].is_string())
          bad_request("prompt", "'prompt' (a string) or 'messages' is required");
        if (!m.tokenizer) bad_request("prompt", "the model has no tokenizer.json");
        const bool special = body.value("add_special_tokens", true);
        ids = m.tokenizer->encode(body["prompt"].get<std::string>(), special);
      }
      res.set_content(dump(ojson{{"count", ids.size()}, {"max_model_len", m.context}, {"tokens", ids}}),
                      "application/json");
    });
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    answer_errors(res, [&] {
      const json body = parse_body(req.body);
      const ServedModel& m = target.model;
      check_model(body, m);
      if (!body.contains("tokens") || !body["tokens"].is_array())
        bad_request("tokens", "'tokens' (an array) is required");
      if (!m.tokenizer) bad_request("tokens", "the model has no tokenizer.json");
      std::vector<int32_t> ids;
      for (const json& t : body["tokens"]) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= m.vocab_size)
          bad_request("tokens", str_cat("'tokens' must be token ids in [0, ", m.vocab_size, ")"));
        ids.push_back(t.get<int32_t>());
      }
      std::string text;
      try {
        text = m.tokenizer->decode(ids, body.value("skip_special_tokens", false));
      } catch (const Error& e) {
        bad_request("tokens", e.what());
      }
      res.set_content(dump(ojson{{"prompt", text}}), "application/json");
    });
  });
}

ojson ApiServer::Impl::models_entry() const {
  return {{"id", target.model.name},
          {"object", "model"},
          {"created", new_head("", "").created},
          {"owned_by", "moe-runtime"},
          {"max_model_len", target.model.context}};
}

void ApiServer::Impl::generation(const httplib::Request& req, httplib::Response& res, bool chat) {
  std::shared_ptr<GenerationJob> job;
  const bool queued = answer_errors(res, [&] {
    if (shutting_down) throw ApiError(503, "the server is shutting down");
    const json body = parse_body(req.body);
    GenerationRequest g = chat ? parse_chat(body, target.model) : parse_completion(body, target.model);
    job = std::make_shared<GenerationJob>(std::move(g), *target.engine, metrics);
    job->start();
  });
  if (!queued) return;
  const int fd = find_connection_fd(req.remote_addr, req.remote_port, req.local_port);
  if (job->request().stream)
    answer_stream(job, fd, res);
  else
    answer_whole(job, fd, res);
}

void ApiServer::Impl::answer_whole(const std::shared_ptr<GenerationJob>& job, int fd, httplib::Response& res) {
  const GenerationRequest& g = job->request();
  std::vector<Choice> choices(static_cast<size_t>(job->choices()));
  if (g.echo)
    for (size_t c = 0; c < choices.size(); ++c) choices[c].text = g.prompt_texts[c / static_cast<size_t>(g.n)];
  Usage usage;
  int finished = 0;
  std::vector<JobEvent> events;
  auto checked = std::chrono::steady_clock::now();
  while (finished < job->choices()) {
    events.clear();
    const bool got = job->wait(kPoll, events);
    if (!got || std::chrono::steady_clock::now() - checked >= kPoll) {
      checked = std::chrono::steady_clock::now();
      if (peer_closed(fd)) {  // nobody to answer: stop generating for them
        job->cancel();
        send_error(res, 499, "the client closed the connection");
        return;
      }
    }
    if (!got) continue;
    for (const JobEvent& e : events) {
      Choice& c = choices[static_cast<size_t>(e.choice)];
      c.text += e.text;
      c.token_ids.insert(c.token_ids.end(), e.tokens.begin(), e.tokens.end());
      c.with_token_ids = g.return_token_ids;
      if (e.finish == FinishReason::kNone) continue;
      ++finished;
      if (e.finish == FinishReason::kError) {
        job->cancel();
        send_error(res, 500, str_cat("generation failed: ", e.error));
        return;
      }
      if (e.finish == FinishReason::kCancelled) {
        job->cancel();
        send_error(res, 503, "the generation was cancelled: the server is shutting down");
        return;
      }
      c.finish_reason = api_finish(e.finish);
      count_usage(usage, e, g.n);
    }
  }
  const ResponseHead head = new_head(g.chat ? "chatcmpl-" : "cmpl-", g.model);
  res.set_content(dump(g.chat ? chat_body(head, choices, usage) : completion_body(head, choices, usage)),
                  "application/json");
}

void ApiServer::Impl::answer_stream(const std::shared_ptr<GenerationJob>& job, int fd, httplib::Response& res) {
  struct StreamState {
    std::shared_ptr<GenerationJob> job;
    int fd = -1;
    ResponseHead head;
    std::vector<bool> started, finished;
    int n_finished = 0;
    Usage usage;
    bool done = false;
    std::vector<JobEvent> events;
    std::chrono::steady_clock::time_point checked = std::chrono::steady_clock::now();
  };
  auto st = std::make_shared<StreamState>();
  st->job = job;
  st->fd = fd;
  st->head = new_head(job->request().chat ? "chatcmpl-" : "cmpl-", job->request().model);
  st->started.assign(static_cast<size_t>(job->choices()), false);
  st->finished.assign(static_cast<size_t>(job->choices()), false);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        const GenerationRequest& g = st->job->request();
        if (st->done) {
          sink.done();
          return true;
        }
        std::string out;
        // One choice's new text (and ids, with return_token_ids), or its end.
        auto piece = [&](int choice, const std::string& text, const std::vector<int32_t>& ids,
                         const std::optional<std::string>& finish) {
          const bool first = !st->started[static_cast<size_t>(choice)];
          st->started[static_cast<size_t>(choice)] = true;
          const std::vector<int32_t>* with_ids = g.return_token_ids ? &ids : nullptr;
          const bool worth = !text.empty() || finish || (with_ids && !ids.empty());
          if (g.chat) {
            if (first && worth) out += sse_event(chat_chunk(st->head, choice, true, "", {}, g.include_usage));
            if (worth) out += sse_event(chat_chunk(st->head, choice, false, text, finish, g.include_usage, with_ids));
          } else {
            std::string t = text;
            if (first && g.echo) t = g.prompt_texts[static_cast<size_t>(choice / g.n)] + t;
            if (worth || !t.empty())
              out += sse_event(completion_chunk(st->head, choice, t, finish, g.include_usage, with_ids));
          }
        };
        static const std::vector<int32_t> kNoIds;
        st->events.clear();
        for (;;) {
          const bool got = st->job->wait(kPoll, st->events);
          if (!got || std::chrono::steady_clock::now() - st->checked >= kPoll) {
            st->checked = std::chrono::steady_clock::now();
            if (peer_closed(st->fd)) {
              st->job->cancel();
              return false;
            }
          }
          if (got) break;
        }
        for (const JobEvent& e : st->events) {
          if (e.finish == FinishReason::kError || e.finish == FinishReason::kCancelled) {
            const std::string why = e.finish == FinishReason::kError ? "generation failed: " + e.error
                                                                     : std::string("the server is shutting down");
            out += sse_event(error_body(e.finish == FinishReason::kError ? 500 : 503, why));
            st->job->cancel();
            st->done = true;
            break;
          }
          const std::optional<std::string> finish =
              e.finish == FinishReason::kNone ? std::nullopt : std::optional<std::string>(api_finish(e.finish));
          if (finish) {
            // The text and the end of a choice in one chunk each: text first, then the reason.
            if (!e.text.empty() || (g.return_token_ids && !e.tokens.empty()))
              piece(e.choice, e.text, e.tokens, std::nullopt);
            piece(e.choice, "", kNoIds, finish);
            st->finished[static_cast<size_t>(e.choice)] = true;
            ++st->n_finished;
            count_usage(st->usage, e, g.n);
          } else {
            piece(e.choice, e.text, e.tokens, std::nullopt);
          }
        }
        if (!st->done && st->n_finished == st->job->choices()) {
          if (g.include_usage) out += sse_event(usage_chunk(st->head, g.chat, st->usage));
          st->done = true;
        }
        if (st->done) out += sse_done();
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          st->job->cancel();
          return false;
        }
        if (st->done) sink.done();
        return true;
      },
      [st](bool) { st->job->cancel(); });
}

ApiServer::ApiServer(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->routes();
}

ApiServer::~ApiServer() {
  stop();
}

int ApiServer::bind() {
  const ServeOptions& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    MOE_CHECK(port > 0, "moe serve: cannot bind ", o.host, " to a free port");
  } else {
    MOE_CHECK(impl_->http.bind_to_port(o.host, port), "moe serve: cannot listen on ", o.host, ":", port,
              " (in use, or not an address of this machine)");
  }
  return port;
}

void ApiServer::run() {
  impl_->http.listen_after_bind();
}

void ApiServer::set_ready(ServeTarget target) {
  impl_->target = std::move(target);
  impl_->ready = true;
}

void ApiServer::begin_shutdown() {
  impl_->shutting_down = true;
}

void ApiServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace moe::serve
