#include "runtime/offload/host_expert_runner.h"

#include <chrono>
#include <cstring>

#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"

namespace moe {

HostExpertRunner::HostExpertRunner(int threads, int64_t hidden, int64_t max_rows)
    : hidden_(hidden), max_rows_(max_rows), cpu_(std::make_unique<CpuBackend>(threads)) {
  in_ = cpu_->alloc(DType::kF32, {max_rows, hidden});
  worker_ = std::thread([this] { run(); });
}

HostExpertRunner::~HostExpertRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::string HostExpertRunner::describe() const {
  return str_cat("CPU experts on ", cpu_->name());
}

int64_t HostExpertRunner::submit(const float* x, std::span<const int32_t> rows, const MlpWeights& w,
                                 ReadCompletion* ready, float* out) {
  MOE_CHECK(static_cast<int64_t>(rows.size()) <= max_rows_, "host experts: ", rows.size(), " rows exceed the runner's ",
            max_rows_);
  Job j{.id = ++submitted_, .x = x, .rows = {rows.begin(), rows.end()}, .w = w, .ready = ready, .out = out};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(j));
  }
  cv_.notify_all();
  return submitted_;
}

bool HostExpertRunner::done(int64_t job) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_ >= job;
}

double HostExpertRunner::wait(int64_t job) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return finished_ >= job; });
  if (error_ && error_job_ <= job) std::rethrow_exception(error_);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void HostExpertRunner::run() {
  for (;;) {
    Job j;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      j = std::move(queue_.front());
      queue_.pop_front();
    }
    std::exception_ptr err;
    try {
      if (j.ready) j.ready->wait();
      const auto m = static_cast<int64_t>(j.rows.size());
      const auto row_bytes = static_cast<size_t>(hidden_) * sizeof(float);
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(in_.as<float>() + i * hidden_, j.x + static_cast<int64_t>(j.rows[static_cast<size_t>(i)]) * hidden_,
                    row_bytes);
      Tensor x = in_.first_rows(m);
      Tensor y(j.out, DType::kF32, Device::kCpu, {m, hidden_});
      cpu_->swiglu_mlp(x, j.w, y);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = j.id;
      if (err && !error_) {
        error_ = err;
        error_job_ = j.id;
      }
    }
    cv_.notify_all();
  }
}

}  // namespace moe
