#include "launch/coordinator/control_types.h"

#include <cmath>

#include "runtime/core/error.h"

namespace moe::coordinator {
namespace {

void check_seconds(double v, const char* field) {
  MOE_CHECK(std::isfinite(v) && v >= 0, field, " is ", v, ": must be a finite number of seconds >= 0");
}

void check_tokens(const std::vector<int32_t>& ids, const char* field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    MOE_CHECK(ids[i] >= 0, field, "[", i, "] is ", ids[i], ": token ids are >= 0");
  }
}

}  // namespace

void validate(const Job& job) {
  MOE_CHECK(!job.model_dir.empty(), "job.model_dir is empty");
  MOE_CHECK(!job.prompt_token_ids.empty(), "job.prompt_token_ids is empty: the job needs a prompt");
  check_tokens(job.prompt_token_ids, "job.prompt_token_ids");
  MOE_CHECK(job.max_new_tokens >= 1, "job.max_new_tokens is ", job.max_new_tokens, ": must be >= 1");
  if (!job.greedy) {
    MOE_CHECK(std::isfinite(job.temperature) && job.temperature > 0, "job.temperature is ", job.temperature,
              ": sampling needs a temperature > 0 (or set greedy)");
    MOE_CHECK(job.top_k >= 0, "job.top_k is ", job.top_k, ": must be >= 0 (0: off)");
    MOE_CHECK(job.top_p > 0 && job.top_p <= 1, "job.top_p is ", job.top_p, ": must be in (0, 1]");
  }
}

void validate(const StepMetrics& step) {
  check_seconds(step.seconds, "step.seconds");
  check_seconds(step.compute_seconds, "step.compute_seconds");
  check_seconds(step.comm_wait_seconds, "step.comm_wait_seconds");
  check_seconds(step.bubble_seconds, "step.bubble_seconds");
  MOE_CHECK(step.prefetch_predicted_and_used <= step.prefetch_predicted &&
                step.prefetch_predicted_and_used <= step.prefetch_used,
            "step.prefetch_predicted_and_used (", step.prefetch_predicted_and_used, ") exceeds prefetch_predicted (",
            step.prefetch_predicted, ") or prefetch_used (", step.prefetch_used, ")");
}

void validate(const JobResult& result) {
  check_tokens(result.token_ids, "result.token_ids");
  check_seconds(result.prefill_seconds, "result.prefill_seconds");
  check_seconds(result.decode_seconds, "result.decode_seconds");
}

}  // namespace moe::coordinator
