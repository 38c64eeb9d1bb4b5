#include "launch/serve/generation_job.h"

#include <random>

#include "runtime/core/error.h"

namespace moe::serve {

GenerationJob::GenerationJob(GenerationRequest request, BatchEngine& engine, ServerMetrics& metrics)
    : request_(std::move(request)),
      engine_(engine),
      metrics_(metrics),
      channel_(std::make_shared<Channel>()),
      arrival_(std::chrono::steady_clock::now()) {}

GenerationJob::~GenerationJob() {
  cancel();
}

void GenerationJob::start() {
  const int n = request_.n;
  const size_t total = request_.prompts.size() * static_cast<size_t>(n);
  timing_ = std::make_shared<std::vector<ChoiceTiming>>(total);
  thread_local std::mt19937_64 seeds{std::random_device{}()};
  metrics_.request_started();
  for (size_t c = 0; c < total; ++c) {
    RequestParams p = request_.params;
    p.prompt = request_.prompts[c / static_cast<size_t>(n)];
    p.max_tokens = request_.max_tokens[c / static_cast<size_t>(n)];
    p.sampling.seed = request_.seeded ? request_.params.sampling.seed + (c % static_cast<size_t>(n)) : seeds();
    const int choice = static_cast<int>(c);
    std::shared_ptr<Channel> ch = channel_;
    std::shared_ptr<std::vector<ChoiceTiming>> timing = timing_;
    ServerMetrics* metrics = &metrics_;
    const auto arrival = arrival_;
    auto on_output = [ch, timing, metrics, arrival, choice](const RequestOutput& out) {
      ChoiceTiming& t = (*timing)[static_cast<size_t>(choice)];
      if (!out.tokens.empty()) {
        if (!t.first_seen) {
          metrics->first_token(std::chrono::duration<double>(out.time - arrival).count());
          t.first_seen = true;
        } else {
          metrics->inter_token(std::chrono::duration<double>(out.time - t.last).count(),
                               static_cast<int64_t>(out.tokens.size()));
        }
        t.last = out.time;
      }
      if (out.finished())
        metrics->request_finished(finish_reason_name(out.finish),
                                  std::chrono::duration<double>(out.time - arrival).count(), out.prompt_tokens,
                                  out.completion_tokens);
      {
        std::lock_guard lock(ch->mutex);
        ch->events.push_back(
            JobEvent{choice, out.text, out.tokens, out.finish, out.error, out.prompt_tokens, out.completion_tokens});
      }
      ch->ready.notify_one();
    };
    try {
      ids_.push_back(engine_.submit(std::move(p), on_output));
    } catch (const Error& e) {
      cancel();
      const std::string what = e.what();
      if (what.find("shutting down") != std::string::npos) throw ApiError(503, what);
      throw ApiError(400, what, request_.chat ? "messages" : "prompt");
    }
  }
}

bool GenerationJob::wait(std::chrono::milliseconds timeout, std::vector<JobEvent>& out) {
  std::unique_lock lock(channel_->mutex);
  if (!channel_->ready.wait_for(lock, timeout, [&] { return !channel_->events.empty(); })) return false;
  while (!channel_->events.empty()) {
    out.push_back(std::move(channel_->events.front()));
    channel_->events.pop_front();
  }
  return true;
}

void GenerationJob::cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  for (const uint64_t id : ids_) engine_.cancel(id);  // finished ids are ignored by the engine
}

}  // namespace moe::serve
