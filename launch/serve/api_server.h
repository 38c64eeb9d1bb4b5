// The OpenAI-compatible HTTP server of `moe serve` (cpp-httplib): POST /v1/completions and
// /v1/chat/completions (streamed as server-sent events or not), GET /v1/models, /health (503
// while the model loads, 200 after), /metrics (Prometheus), POST /tokenize and /detokenize.
// Requests become BatchEngine requests; a client that disconnects cancels its generation. Errors
// are OpenAI-style JSON with their status: 400 malformed JSON or parameters, 401 a missing or
// wrong API key, 404 an unknown model or route, 413 a body over the limit, 503 not ready or
// shutting down, 500 a failed step. A bad request never reaches the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launch/serve/openai_request.h"
#include "launch/serve/server_metrics.h"
#include "runtime/batch/batch_engine.h"

namespace moe::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (bind() says which)
  std::string api_key;  // non-empty: /v1/*, /tokenize, /detokenize need "Bearer <key>"
  size_t max_body_bytes = size_t{4} << 20;
  int http_threads = 64;    // connections served at once (streams hold one each)
  bool access_log = false;  // one line per request on stderr
};

// What the server answers with once the model is loaded.
struct ServeTarget {
  ServedModel model;
  BatchEngine* engine = nullptr;  // started by the caller
  double kv_block_bytes = 0;
  std::function<std::vector<ExtraGauge>()> extra_gauges;  // may be empty
};

class ApiServer {
 public:
  explicit ApiServer(ServeOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the listening socket; returns the port. Throws moe::Error naming the address.
  int bind();
  // Serves until stop(); call after bind(), from the thread that should run the accept loop.
  void run();
  // From now on requests are served (before: 503 "loading").
  void set_ready(ServeTarget target);
  // New generation requests get 503 from now on (the engine is about to stop).
  void begin_shutdown();
  // Stops accepting and returns once run() can return (in-flight handlers first end).
  void stop();

 private:
  struct Impl;  // httplib and the request handling (api_server.cpp)
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::serve
