#include "parallel/scaling_model.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace moe::parallel {

double allreduce_seconds(const Link& l, int ranks, double bytes) {
  if (ranks <= 1) return 0;
  return 2.0 * std::ceil(std::log2(ranks)) * l.alpha + 2.0 * (ranks - 1) * bytes / (ranks * l.beta);
}

double tokens_per_second(const DecodeBytes& m, const Device& d, const Link& l, Mode mode, int ranks, int in_flight) {
  const double hidden_bytes = 4.0 * static_cast<double>(m.hidden);
  const double L = static_cast<double>(m.layers);
  switch (mode) {
    case Mode::kSingle: return d.rank_rate / m.total;
    case Mode::kTensor: {
      if (ranks == 1) return d.rank_rate / m.total;
      const double bytes = (m.attention + m.experts + m.lm_head) / ranks + m.replicated;
      return 1.0 / (bytes / d.shared_rate + (2 * L + 1) * allreduce_seconds(l, ranks, hidden_bytes));
    }
    case Mode::kExpert: {
      if (ranks == 1) return d.rank_rate / m.total;
      const double bytes = m.attention + m.lm_head + m.replicated + m.experts / ranks;
      return 1.0 / (bytes / d.shared_rate + L * allreduce_seconds(l, ranks, hidden_bytes));
    }
    case Mode::kPipeline: {
      if (ranks == 1) return d.rank_rate / m.total;
      const bool all_busy = in_flight >= ranks;
      const double stage = m.total / ranks / (all_busy ? d.shared_rate : d.rank_rate) + l.alpha + hidden_bytes / l.beta;
      return all_busy ? 1.0 / stage : in_flight / (ranks * stage);
    }
  }
  return 0;
}

Calibration calibrate(const DecodeBytes& m, const std::vector<Measured>& runs) {
  auto find = [&](Mode mode, int ranks, int in_flight, const char* what) -> const Measured& {
    for (const Measured& r : runs)
      if (r.mode == mode && r.ranks == ranks && r.in_flight == in_flight) return r;
    fail("scaling model: calibration needs the ", what, " run");
  };
  const Measured& single = find(Mode::kSingle, 1, 1, "1 rank, 1 sequence");
  const Measured& pp = find(Mode::kPipeline, 2, 2, "pipeline 2 ranks, 2 in flight");
  const Measured& tp = find(Mode::kTensor, 2, 1, "tensor parallel 2 ranks");
  Calibration c;
  c.device.name = "this machine (measured)";
  c.device.rank_rate = single.tokens_per_second * m.total;
  c.link.name = "this machine (measured)";
  c.link.beta = c.device.rank_rate;
  MOE_CHECK(tp.comm_calls_per_token > 0, "scaling model: the tensor-parallel run records no collectives");
  // One all-reduce on 2 ranks is 2 latency steps (its 4 KB bandwidth term is folded into alpha).
  c.link.alpha = tp.comm_seconds_per_token / tp.comm_calls_per_token / 2.0;
  const double hop = c.link.alpha + 4.0 * static_cast<double>(m.hidden) / c.link.beta;
  const double stage = 1.0 / pp.tokens_per_second - hop;  // both stages busy: one token per stage time
  MOE_CHECK(stage > 0, "scaling model: the pipeline run is faster than its hop time");
  c.device.shared_rate = m.total / 2 / stage;
  return c;
}

}  // namespace moe::parallel
