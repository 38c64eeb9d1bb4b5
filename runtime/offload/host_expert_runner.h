// Computes routed experts on the CPU from their host copies while the device computes the others
// (the GPU tier's --miss-policy cpu/auto): one worker thread with its own CpuBackend, jobs run in
// the order they were submitted. A job may wait for the read that brings its expert into a host
// slot. The forward pass then copies each result to the device and scatter-adds it like any other
// expert's, so the sum is the resident path's (within f32 rounding of the CPU kernels).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/offload/expert_reader.h"

namespace moe {

class CpuBackend;

class HostExpertRunner {
 public:
  // `threads`: the worker's OpenMP threads (0: all cores). Inputs are (n, hidden) rows, at most
  // max_rows rows per job.
  HostExpertRunner(int threads, int64_t hidden, int64_t max_rows);
  ~HostExpertRunner();  // finishes the queued jobs, joins
  HostExpertRunner(const HostExpertRunner&) = delete;
  HostExpertRunner& operator=(const HostExpertRunner&) = delete;

  // Queues y = SwiGLU_w(x[rows]) into out (rows.size() x hidden floats). x (host floats, row
  // width hidden), rows, the weights' memory and out must stay valid until the job is done; `ready`
  // (may be null) is waited for first. Returns the job's number (1, 2, ...).
  int64_t submit(const float* x, std::span<const int32_t> rows, const MlpWeights& w, ReadCompletion* ready, float* out);
  // True when job `job` (and every earlier one) has finished. Never blocks.
  bool done(int64_t job) const;
  // Blocks until job `job` has finished; rethrows its error (a failed read, say). Returns the
  // seconds waited.
  double wait(int64_t job);
  int64_t last_submitted() const { return submitted_; }
  std::string describe() const;

 private:
  struct Job {
    int64_t id = 0;
    const float* x = nullptr;
    std::vector<int32_t> rows;
    MlpWeights w;
    ReadCompletion* ready = nullptr;
    float* out = nullptr;
  };
  void run();

  int64_t hidden_, max_rows_;
  std::unique_ptr<CpuBackend> cpu_;
  Tensor in_;  // (max_rows, hidden): the job's gathered rows
  int64_t submitted_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;     // guarded by mutex_
  int64_t finished_ = 0;      // guarded by mutex_
  std::exception_ptr error_;  // guarded by mutex_: the first failure
  int64_t error_job_ = 0;     // guarded by mutex_
  bool stop_ = false;         // guarded by mutex_
  std::thread worker_;        // last: started once everything above exists
};

}  // namespace moe
