#include "launch/serve/server_metrics.h"

#include <cstdio>

namespace moe::serve {
namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void scalar(std::string& out, const std::string& name, const char* type, const std::string& help, double v) {
  header(out, name, type, help);
  out += name + " " + num(v) + "\n";
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,   0.3,   0.4,  0.5,
          0.75,  1.0,    2.5,   5.0,  7.5,   10.0, 20.0,  40.0, 80.0, 160.0, 320.0, 640.0};
}
std::vector<double> length_buckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  ++count_;
  sum_ += v;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics()
    : ttft_(latency_buckets()),
      itl_(latency_buckets()),
      e2e_(latency_buckets()),
      prompt_len_(length_buckets()),
      output_len_(length_buckets()) {}

void ServerMetrics::request_started() {
  std::lock_guard lock(mutex_);
  ++requests_started_;
}

void ServerMetrics::first_token(double ttft) {
  std::lock_guard lock(mutex_);
  ttft_.observe(ttft);
}

void ServerMetrics::inter_token(double seconds, int64_t tokens) {
  std::lock_guard lock(mutex_);
  for (int64_t i = 0; i < tokens; ++i) itl_.observe(seconds / static_cast<double>(tokens));
}

void ServerMetrics::request_finished(const std::string& reason, double e2e, int64_t prompt_tokens,
                                     int64_t completion_tokens) {
  std::lock_guard lock(mutex_);
  ++finished_[reason];
  e2e_.observe(e2e);
  prompt_len_.observe(static_cast<double>(prompt_tokens));
  output_len_.observe(static_cast<double>(completion_tokens));
}

void ServerMetrics::http_response(int status) {
  std::lock_guard lock(mutex_);
  ++http_[status];
}

std::string ServerMetrics::render(const BatchEngineStats& e, double kv_block_bytes,
                                  const std::vector<ExtraGauge>& extra) const {
  std::string out;
  scalar(out, "moe_num_requests_running", "gauge", "Requests in the running batch.", static_cast<double>(e.running));
  scalar(out, "moe_num_requests_waiting", "gauge", "Requests waiting for a sequence slot or KV blocks.",
         static_cast<double>(e.waiting));
  scalar(out, "moe_kv_cache_usage_perc", "gauge", "Fraction of the KV pool's blocks in use (1 = full).",
         e.kv_blocks_total > 0 ? static_cast<double>(e.kv_blocks_used) / static_cast<double>(e.kv_blocks_total) : 0);
  scalar(out, "moe_kv_cache_blocks_used", "gauge", "KV pool blocks in use.", static_cast<double>(e.kv_blocks_used));
  scalar(out, "moe_kv_cache_blocks_total", "gauge", "KV pool blocks in all.", static_cast<double>(e.kv_blocks_total));
  scalar(out, "moe_kv_cache_bytes_total", "gauge", "Bytes of the KV pool.",
         kv_block_bytes * static_cast<double>(e.kv_blocks_total));
  scalar(out, "moe_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
         static_cast<double>(e.prompt_tokens));
  scalar(out, "moe_generation_tokens_total", "counter", "Generated tokens.", static_cast<double>(e.generated_tokens));
  scalar(out, "moe_prefill_rows_total", "counter", "Token rows run while prefilling (recomputation included).",
         static_cast<double>(e.prefill_rows));
  scalar(out, "moe_num_preemptions_total", "counter", "Sequences preempted (their KV freed, recomputed later).",
         static_cast<double>(e.preemptions));
  scalar(out, "moe_engine_steps_total", "counter", "Forward passes of the batch engine.", static_cast<double>(e.steps));
  scalar(out, "moe_engine_busy_seconds_total", "counter", "Time the engine spent in forward passes.", e.busy_seconds);
  scalar(out, "moe_expert_calls_total", "counter", "Routed (layer, expert) pairs run; each reads the expert once.",
         static_cast<double>(e.expert_calls));
  scalar(out, "moe_weight_bytes_read_total", "counter",
         "Weight bytes the steps read: dense weights once per step plus each distinct routed expert touched.",
         static_cast<double>(e.weight_bytes_read));
  for (const ExtraGauge& g : extra) scalar(out, g.name, "gauge", g.help, g.value);

  std::lock_guard lock(mutex_);
  scalar(out, "moe_requests_received_total", "counter", "Generation requests accepted.",
         static_cast<double>(requests_started_));
  header(out, "moe_request_success_total", "counter", "Finished generation requests by finish reason.");
  for (const auto& [reason, n] : finished_)
    out += "moe_request_success_total{finished_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  header(out, "moe_http_responses_total", "counter", "HTTP responses by status code.");
  for (const auto& [status, n] : http_)
    out += "moe_http_responses_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  ttft_.write(out, "moe_time_to_first_token_seconds", "Time from receiving a request to its first token.");
  itl_.write(out, "moe_inter_token_latency_seconds", "Time between successive tokens of a request.");
  e2e_.write(out, "moe_e2e_request_latency_seconds", "Time from receiving a request to its last token.");
  prompt_len_.write(out, "moe_request_prompt_tokens", "Prompt tokens per finished request.");
  output_len_.write(out, "moe_request_generation_tokens", "Generated tokens per finished request.");
  return out;
}

}  // namespace moe::serve
