#include "launch/coordinator/proto_convert.h"

#include <cmath>
#include <vector>

#include "runtime/core/error.h"

namespace moe::coordinator {
namespace {

double non_negative(double v, const char* field) {
  MOE_CHECK(std::isfinite(v) && v >= 0, field, " is ", v, ": must be a finite number >= 0");
  return v;
}

void to_proto(const LayerRange& in, v1::LayerRange* out) {
  out->set_begin(in.begin);
  out->set_end(in.end);
}

LayerRange from_proto(const v1::LayerRange& in) {
  return LayerRange{in.begin(), in.end()};
}

}  // namespace

void to_proto(const parallel::WorkerInfo& in, v1::WorkerInfo* out) {
  out->set_id(in.id);
  out->set_host(in.host);
  out->set_mpi_rank(in.mpi_rank);
  out->clear_devices();
  for (const auto& d : in.devices) {
    v1::WorkerDevice* pd = out->add_devices();
    pd->set_kind(d.kind);
    pd->set_name(d.name);
    pd->set_memory_bytes(d.memory_bytes);
  }
  out->set_ram_bytes(in.ram_bytes);
  out->set_memory_bandwidth(in.memory_bandwidth);
  out->set_drive_bandwidth(in.drive_bandwidth);
  out->set_link_bandwidth(in.link_bandwidth);
  out->set_link_latency(in.link_latency);
  out->set_compute_bytes_per_s(in.compute_bytes_per_s);
  out->set_data_address(in.data_address);
}

parallel::WorkerInfo from_proto(const v1::WorkerInfo& in) {
  parallel::WorkerInfo w;
  w.id = in.id();
  MOE_CHECK(!in.host().empty(), "worker.host is empty: a worker names its host");
  w.host = in.host();
  MOE_CHECK(in.mpi_rank() >= -1, "worker.mpi_rank is ", in.mpi_rank(), ": must be >= 0, or -1 when started by hand");
  w.mpi_rank = in.mpi_rank();
  for (int i = 0; i < in.devices_size(); ++i) {
    const v1::WorkerDevice& d = in.devices(i);
    MOE_CHECK(!d.kind().empty(), "worker.devices[", i, "].kind is empty (\"cpu\" or \"cuda\")");
    w.devices.push_back(parallel::WorkerDevice{d.kind(), d.name(), d.memory_bytes()});
  }
  w.ram_bytes = in.ram_bytes();
  w.memory_bandwidth = non_negative(in.memory_bandwidth(), "worker.memory_bandwidth");
  w.drive_bandwidth = non_negative(in.drive_bandwidth(), "worker.drive_bandwidth");
  w.link_bandwidth = non_negative(in.link_bandwidth(), "worker.link_bandwidth");
  w.link_latency = non_negative(in.link_latency(), "worker.link_latency");
  w.compute_bytes_per_s = non_negative(in.compute_bytes_per_s(), "worker.compute_bytes_per_s");
  w.data_address = in.data_address();
  return w;
}

void to_proto(const parallel::WorkerAssignment& in, v1::WorkerAssignment* out) {
  out->set_worker(in.worker);
  out->set_pp_rank(in.pp_rank);
  out->set_ep_rank(in.ep_rank);
  out->set_tp_rank(in.tp_rank);
  out->set_world_rank(in.world_rank);
  to_proto(in.layers, out->mutable_layers());
  out->set_resident_bytes(in.resident_bytes);
  out->set_expert_ram_budget(in.expert_ram_budget);
  out->set_offload(in.offload);
  out->set_seconds_per_token(in.seconds_per_token);
}

parallel::WorkerAssignment from_proto(const v1::WorkerAssignment& in) {
  parallel::WorkerAssignment a;
  a.worker = in.worker();
  a.pp_rank = in.pp_rank();
  a.ep_rank = in.ep_rank();
  a.tp_rank = in.tp_rank();
  a.world_rank = in.world_rank();
  a.layers = from_proto(in.layers());
  a.resident_bytes = in.resident_bytes();
  a.expert_ram_budget = in.expert_ram_budget();
  a.offload = in.offload();
  a.seconds_per_token = in.seconds_per_token();
  return a;
}

void to_proto(const parallel::ClusterPlan& in, v1::ClusterPlan* out) {
  out->set_tp(in.tp);
  out->set_pp(in.pp);
  out->set_ep(in.ep);
  out->clear_stages();
  for (const auto& s : in.stages) to_proto(s, out->add_stages());
  out->clear_assignments();
  for (const auto& a : in.assignments) to_proto(a, out->add_assignments());
  out->set_predicted_tokens_per_s(in.predicted_tokens_per_s);
}

parallel::ClusterPlan from_proto(const v1::ClusterPlan& in) {
  parallel::ClusterPlan p;
  p.tp = in.tp();
  p.pp = in.pp();
  p.ep = in.ep();
  for (const auto& s : in.stages()) p.stages.push_back(from_proto(s));
  for (const auto& a : in.assignments()) p.assignments.push_back(from_proto(a));
  p.predicted_tokens_per_s = in.predicted_tokens_per_s();
  return p;
}

void validate_plan(const parallel::ClusterPlan& plan, size_t workers) {
  MOE_CHECK(plan.tp >= 1 && plan.pp >= 1 && plan.ep >= 1, "plan: tp ", plan.tp, ", pp ", plan.pp, ", ep ", plan.ep,
            ": each must be >= 1");
  const size_t world = static_cast<size_t>(plan.tp) * static_cast<size_t>(plan.pp) * static_cast<size_t>(plan.ep);
  MOE_CHECK(world == workers, "plan: tp ", plan.tp, " x pp ", plan.pp, " x ep ", plan.ep, " = ", world, " ranks for ",
            workers, " workers");
  MOE_CHECK(plan.stages.size() == static_cast<size_t>(plan.pp), "plan: ", plan.stages.size(), " stages for pp ",
            plan.pp);
  int64_t next = 0;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const LayerRange& r = plan.stages[s];
    MOE_CHECK(r.begin == next && r.end > r.begin, "plan: stage ", s, " has layers [", r.begin, ", ", r.end,
              "): stages are non-empty and contiguous from layer 0 (expected to start at ", next, ")");
    next = r.end;
  }
  MOE_CHECK(plan.assignments.size() == workers, "plan: ", plan.assignments.size(), " assignments for ", workers,
            " workers");
  std::vector<bool> seen(workers, false);
  for (size_t i = 0; i < plan.assignments.size(); ++i) {
    const parallel::WorkerAssignment& a = plan.assignments[i];
    MOE_CHECK(a.world_rank == static_cast<int>(i), "plan: assignment ", i, " has world rank ", a.world_rank,
              " (assignments are by world rank)");
    MOE_CHECK(a.worker >= 0 && static_cast<size_t>(a.worker) < workers, "plan: assignment ", i, " names worker ",
              a.worker, " of ", workers);
    MOE_CHECK(!seen[static_cast<size_t>(a.worker)], "plan: worker ", a.worker, " has two assignments");
    seen[static_cast<size_t>(a.worker)] = true;
    MOE_CHECK(a.pp_rank >= 0 && a.pp_rank < plan.pp && a.tp_rank >= 0 && a.tp_rank < plan.tp && a.ep_rank >= 0 &&
                  a.ep_rank < plan.ep,
              "plan: assignment ", i, " has ranks pp ", a.pp_rank, ", tp ", a.tp_rank, ", ep ", a.ep_rank,
              " outside tp ", plan.tp, ", pp ", plan.pp, ", ep ", plan.ep);
    const LayerRange& stage = plan.stages[static_cast<size_t>(a.pp_rank)];
    MOE_CHECK(a.layers.begin == stage.begin && a.layers.end == stage.end, "plan: assignment ", i, " has layers [",
              a.layers.begin, ", ", a.layers.end, ") but its stage ", a.pp_rank, " has [", stage.begin, ", ", stage.end,
              ")");
  }
}

void to_proto(const Job& in, v1::Job* out) {
  out->set_model_dir(in.model_dir);
  out->mutable_prompt_token_ids()->Assign(in.prompt_token_ids.begin(), in.prompt_token_ids.end());
  out->set_max_new_tokens(in.max_new_tokens);
  out->set_greedy(in.greedy);
  out->set_temperature(in.temperature);
  out->set_top_k(in.top_k);
  out->set_top_p(in.top_p);
  out->set_seed(in.seed);
}

Job from_proto(const v1::Job& in) {
  Job j;
  j.model_dir = in.model_dir();
  j.prompt_token_ids.assign(in.prompt_token_ids().begin(), in.prompt_token_ids().end());
  j.max_new_tokens = in.max_new_tokens();
  j.greedy = in.greedy();
  j.temperature = in.temperature();
  j.top_k = in.top_k();
  j.top_p = in.top_p();
  j.seed = in.seed();
  validate(j);
  return j;
}

void to_proto(const Progress& in, v1::Progress* out) {
  out->set_steps(in.steps);
  out->set_tokens(in.tokens);
  out->set_seconds(in.seconds);
  out->set_rss_bytes(in.rss_bytes);
}

Progress from_proto(const v1::Progress& in) {
  return Progress{in.steps(), in.tokens(), non_negative(in.seconds(), "progress.seconds"), in.rss_bytes()};
}

void to_proto(const StepMetrics& in, v1::StepMetrics* out) {
  out->set_step(in.step);
  out->set_tokens(in.tokens);
  out->set_seconds(in.seconds);
  out->set_compute_seconds(in.compute_seconds);
  out->set_comm_wait_seconds(in.comm_wait_seconds);
  out->set_bubble_seconds(in.bubble_seconds);
  out->set_cache_hits(in.cache_hits);
  out->set_cache_misses(in.cache_misses);
  out->set_prefetch_predicted(in.prefetch_predicted);
  out->set_prefetch_used(in.prefetch_used);
  out->set_prefetch_predicted_and_used(in.prefetch_predicted_and_used);
  out->set_bytes_vram(in.bytes_vram);
  out->set_bytes_ram(in.bytes_ram);
  out->set_bytes_nvme(in.bytes_nvme);
}

StepMetrics from_proto(const v1::StepMetrics& in) {
  StepMetrics s;
  s.step = in.step();
  s.tokens = in.tokens();
  s.seconds = in.seconds();
  s.compute_seconds = in.compute_seconds();
  s.comm_wait_seconds = in.comm_wait_seconds();
  s.bubble_seconds = in.bubble_seconds();
  s.cache_hits = in.cache_hits();
  s.cache_misses = in.cache_misses();
  s.prefetch_predicted = in.prefetch_predicted();
  s.prefetch_used = in.prefetch_used();
  s.prefetch_predicted_and_used = in.prefetch_predicted_and_used();
  s.bytes_vram = in.bytes_vram();
  s.bytes_ram = in.bytes_ram();
  s.bytes_nvme = in.bytes_nvme();
  validate(s);
  return s;
}

void to_proto(const JobResult& in, v1::ReportResultRequest* out) {
  out->mutable_token_ids()->Assign(in.token_ids.begin(), in.token_ids.end());
  out->set_text(in.text);
  out->set_prompt_tokens(in.prompt_tokens);
  out->set_prefill_seconds(in.prefill_seconds);
  out->set_decode_seconds(in.decode_seconds);
  out->set_stop_reason(in.stop_reason);
}

JobResult from_proto(const v1::ReportResultRequest& in) {
  JobResult r;
  r.token_ids.assign(in.token_ids().begin(), in.token_ids().end());
  r.text = in.text();
  r.prompt_tokens = in.prompt_tokens();
  r.prefill_seconds = in.prefill_seconds();
  r.decode_seconds = in.decode_seconds();
  r.stop_reason = in.stop_reason();
  validate(r);
  return r;
}

}  // namespace moe::coordinator
