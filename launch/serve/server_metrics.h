// What `moe serve` exposes at /metrics, in the Prometheus text format (version 0.0.4): requests
// running and waiting, prompt and generated token counters, time-to-first-token, inter-token and
// end-to-end latency histograms, KV-pool use, expert-cache hit rate, HTTP responses by status.
// Names follow vLLM's where one exists (moe_ instead of vllm:).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/batch/batch_engine.h"

namespace moe::serve {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // `name`_bucket{le=...}, _sum, _count lines.
  void write(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; the last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Gauges the serving command adds (e.g. the expert cache of an offloaded model).
struct ExtraGauge {
  std::string name, help;
  double value = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  // Thread-safe recorders.
  void request_started();
  void first_token(double ttft_seconds);
  void inter_token(double seconds, int64_t tokens);  // `tokens` arrived `seconds` after the previous ones
  void request_finished(const std::string& finish_reason, double e2e_seconds, int64_t prompt_tokens,
                        int64_t completion_tokens);
  void http_response(int status);

  std::string render(const BatchEngineStats& engine, double kv_block_bytes, const std::vector<ExtraGauge>& extra) const;

 private:
  mutable std::mutex mutex_;
  Histogram ttft_, itl_, e2e_, prompt_len_, output_len_;
  uint64_t requests_started_ = 0;
  std::map<std::string, uint64_t> finished_;  // by finish reason
  std::map<int, uint64_t> http_;              // by status
};

}  // namespace moe::serve
