// One HTTP generation request in flight: its choices (prompts x n) submitted to the batch engine,
// and the channel their outputs come back through, from the engine thread to the HTTP thread
// that answers the client. Records the request's latencies in the server metrics as tokens
// arrive. Cancelling ends every choice that has not finished.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "launch/serve/openai_request.h"
#include "launch/serve/openai_response.h"
#include "launch/serve/server_metrics.h"
#include "runtime/batch/batch_engine.h"

namespace moe::serve {

struct JobEvent {
  int choice = 0;
  std::string text;
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  std::string error;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

class GenerationJob : public std::enable_shared_from_this<GenerationJob> {
 public:
  GenerationJob(GenerationRequest request, BatchEngine& engine, ServerMetrics& metrics);
  ~GenerationJob();

  // Submits every choice (choice i = prompt i / n, sample i % n). Throws ApiError 400 when the
  // engine refuses one (after cancelling those already submitted), 503 when it is stopping.
  void start();
  // Waits up to `timeout` for outputs and appends them to `out`; false when none came.
  bool wait(std::chrono::milliseconds timeout, std::vector<JobEvent>& out);
  // Ends every unfinished choice (the client went away).
  void cancel();

  const GenerationRequest& request() const { return request_; }
  int choices() const { return static_cast<int>(ids_.size()); }

 private:
  struct Channel {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<JobEvent> events;
  };
  struct ChoiceTiming {
    bool first_seen = false;
    std::chrono::steady_clock::time_point last;
  };

  GenerationRequest request_;
  BatchEngine& engine_;
  ServerMetrics& metrics_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<std::vector<ChoiceTiming>> timing_;
  std::vector<uint64_t> ids_;
  std::chrono::steady_clock::time_point arrival_;
  bool cancelled_ = false;
};

}  // namespace moe::serve
