// The values the coordinator's control plane carries besides the plan (parallel/cluster_plan.h):
// the job, the per-step metrics and heartbeat snapshot a worker sends, and rank 0's result. Plain
// structs, no gRPC: the data plane and the `moe coordinator` / `moe worker` commands fill and read
// them, launch/coordinator/proto_convert.cpp maps them to the wire (proto/coordinator.proto).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::coordinator {

// The wire protocol's version: every request carries it, a coordinator refuses any other.
inline constexpr uint32_t kProtocolVersion = 1;

// What to run. Every worker receives the same Job with its plan.
struct Job {
  std::string model_dir;  // as the coordinator sees it (shared storage)
  std::vector<int32_t> prompt_token_ids;
  int32_t max_new_tokens = 0;
  bool greedy = true;        // argmax; the sampling fields are ignored
  float temperature = 0.0f;  // > 0 when not greedy
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};
// Throws moe::Error naming the field: empty model_dir or prompt, a negative token id,
// max_new_tokens < 1, sampling without a positive temperature, top_k < 0, top_p outside (0, 1].
void validate(const Job& job);

// Sent with every heartbeat (WorkerClient::set_progress).
struct Progress {
  uint64_t steps = 0;      // forward steps done
  uint64_t tokens = 0;     // tokens generated
  double seconds = 0;      // since the worker became ready
  uint64_t rss_bytes = 0;  // resident memory of the process
};

// One forward step (a prefill chunk or one decoded token) on one worker.
struct StepMetrics {
  uint64_t step = 0;
  uint64_t tokens = 0;
  double seconds = 0;            // wall time of the step
  double compute_seconds = 0;    // running kernels
  double comm_wait_seconds = 0;  // waiting on all-reduces / sends / receives
  double bubble_seconds = 0;     // idle in the pipeline schedule
  uint64_t cache_hits = 0;       // expert cache (fast tier)
  uint64_t cache_misses = 0;
  uint64_t prefetch_predicted = 0;  // recall = predicted_and_used / used,
  uint64_t prefetch_used = 0;       // precision = predicted_and_used / predicted
  uint64_t prefetch_predicted_and_used = 0;
  uint64_t bytes_vram = 0;  // expert bytes computed from each tier
  uint64_t bytes_ram = 0;
  uint64_t bytes_nvme = 0;
};
// Throws moe::Error naming the field when a time is negative or not finite.
void validate(const StepMetrics& step);

// What world rank 0 reports at the end (WorkerClient::report_result).
struct JobResult {
  std::vector<int32_t> token_ids;  // generated, not the prompt
  std::string text;                // decoded, when the worker has a tokenizer
  uint64_t prompt_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  std::string stop_reason;  // "max_new_tokens", "eos", ...
};
// Throws moe::Error naming the field: a negative token id or time.
void validate(const JobResult& result);

}  // namespace moe::coordinator
