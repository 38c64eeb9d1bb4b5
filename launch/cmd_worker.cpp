// moe worker: one process of a coordinated job (docs/coordinator.md). Under mpirun every rank
// measures what it has (RAM, memory and drive bandwidth), registers with the coordinator, and
// heartbeats from a thread of its own; the coordinator plans, and each worker loads only its part
// (layer range, tensor / expert shard, offload budget) with the MPI ranks renumbered in the plan's
// order. World rank 0 generates the job's tokens and reports them; every worker reports its
// figures. When the coordinator says stop (a worker was lost) or cannot be reached for two
// heartbeats, the worker prints why and exits 3 at once, even from inside a collective.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "launch/commands.h"
#include "launch/coordinator/worker_client.h"
#include "launch/distributed.h"
#include "launch/engine.h"
#include "parallel/layer_planner.h"
#include "parallel/tcp_communicator.h"
#include "runtime/core/error.h"
#include "runtime/offload/bandwidth.h"
#include "runtime/offload/budget.h"

namespace moe::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct WorkerOptions {
  coordinator::ConnectOptions connect;
  std::string model_dir;  // empty: the job's
  std::string device = "cpu";
  int threads = 0;
  bool measure = true;
  std::chrono::milliseconds plan_timeout{600000};
  std::string data_host = "127.0.0.1";  // started by hand: the address the other workers reach this one at
};

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "cpu";
}

// The largest weight file under `dir` (what the drive bandwidth is measured on), or empty.
fs::path largest_file(const fs::path& dir) {
  fs::path best;
  uintmax_t size = 0;
  std::error_code ec;
  for (const auto& f : fs::recursive_directory_iterator(dir, ec))
    if (f.is_regular_file(ec) && f.file_size(ec) > size) size = f.file_size(ec), best = f.path();
  return best;
}

// What this worker reports when it registers: measured in a second or two.
parallel::WorkerInfo probe(const WorkerOptions& o, int mpi_rank, const std::string& model_dir) {
  parallel::WorkerInfo w;
  w.host = host_name();
  w.mpi_rank = mpi_rank;
  const MachineMemory mem = machine_memory();
  w.ram_bytes = mem.available;
  w.devices.push_back(parallel::WorkerDevice{"cpu", cpu_name(), mem.total});
  if (o.measure) {
    // Decode on the CPU streams the weights at the memory's read rate with the worker's threads.
    w.memory_bandwidth = measure_dram_read_bandwidth(uint64_t{128} << 20, o.threads, 2);
    w.compute_bytes_per_s = w.memory_bandwidth;
    const fs::path f = model_dir.empty() ? fs::path{} : largest_file(model_dir);
    if (!f.empty()) {
      try {
        w.drive_bandwidth = measure_file_read_bandwidth(f, uint64_t{64} << 20);
      } catch (const Error&) {
        w.drive_bandwidth = 0;  // unknown: the planner will not offload to it
      }
    }
  }
  return w;
}

coordinator::StepMetrics totals(Engine& e, double seconds) {
  coordinator::StepMetrics m;
  const ForwardCounters& f = e.transformer->counters();
  m.step = f.steps;
  m.tokens = f.tokens;
  m.seconds = seconds;
  if (e.dist) {
    const parallel::CommCounters& c = e.dist->comms.collectives->counters();
    const parallel::PipelineCounters& p = e.dist->driver->counters();
    // Waiting for the previous stage (the receive includes its compute) is the pipeline's bubble;
    // the collectives and the sends are communication.
    m.comm_wait_seconds = c.seconds + p.send_seconds;
    m.bubble_seconds = p.recv_seconds;
  }
  m.compute_seconds = std::max(0.0, seconds - m.comm_wait_seconds - m.bubble_seconds);
  if (e.offload) {
    const OffloadStepStats s = e.offload->stats().running_total();
    m.cache_hits = s.hits;
    m.cache_misses = s.misses;
    m.bytes_ram = s.bytes_ram;
    m.bytes_nvme = s.bytes_nvme;
    const PrefetchCounts& pc = e.offload->prefetch_totals();
    m.prefetch_predicted = pc.predicted;
    m.prefetch_used = pc.used;
    m.prefetch_predicted_and_used = pc.predicted_and_used;
  }
  return m;
}

int run_worker(const WorkerOptions& o) {
  std::unique_ptr<parallel::MpiSession> mpi;
  std::unique_ptr<parallel::Communicator> world;
  if (parallel::MpiSession::launched_under_mpi()) {
    mpi = std::make_unique<parallel::MpiSession>();
    world = parallel::MpiCommunicator::world();
  }
  const int mpi_rank = world ? world->rank() : -1;
  const std::string tag = str_cat("moe worker", world ? str_cat(" (mpi rank ", mpi_rank, ")") : std::string());

  // Started by hand (no mpirun): the data plane is TCP between the workers, on a port of our own.
  std::optional<parallel::TcpListener> listener;
  parallel::WorkerInfo info = probe(o, mpi_rank, o.model_dir);
  if (!world) {
    listener.emplace(o.data_host, 0);
    info.data_address = str_cat(o.data_host, ":", listener->port());
  }
  auto client = coordinator::WorkerClient::connect(o.connect);
  const coordinator::Registration reg = client->register_worker(info);
  std::fprintf(stderr, "%s: registered with %s as %s (heartbeat every %lld ms)\n", tag.c_str(),
               o.connect.address.c_str(), reg.worker_id.c_str(),
               static_cast<long long>(reg.heartbeat_interval.count()));
  client->start_heartbeats([tag](const coordinator::StopNotice& n) {
    if (n.cause == coordinator::StopNotice::Cause::finished) return;
    // The main thread may be blocked in a collective with a dead partner: leave now.
    std::fprintf(stderr, "%s: stopping: %s\n", tag.c_str(), n.reason.c_str());
    std::fflush(stderr);
    std::_Exit(3);
  });
  coordinator::WorkerPlan p;
  try {
    p = client->get_plan(o.plan_timeout);
  } catch (const coordinator::RpcError& x) {
    if (x.code() != grpc::StatusCode::ABORTED) throw;
    // A worker was lost before the plan: leave at once, as the heartbeat's stop does (the channel's
    // teardown can wait seconds on a peer behind a cut link).
    std::fprintf(stderr, "%s: stopping: %s\n", tag.c_str(), x.what());
    std::fflush(stderr);
    std::_Exit(3);
  }
  const parallel::WorkerAssignment& a = p.assignment;
  const int world_size = static_cast<int>(p.plan.assignments.size());
  if (world_size > 1 && world)
    MOE_CHECK(world->size() == world_size, "the plan has ", world_size, " workers; this worker's mpirun world has ",
              world->size(), ": start every worker of the job in one mpirun -np ", world_size,
              ", or every one by hand");

  EngineOptions eo;
  eo.model_dir = o.model_dir.empty() ? p.job.model_dir : o.model_dir;
  eo.device = o.device;
  eo.threads = o.threads;
  eo.parallel.tp = p.plan.tp;
  eo.parallel.pp = p.plan.pp;
  eo.parallel.ep = p.plan.ep;
  eo.parallel.layers = p.plan.layers_spec();
  // RAM beyond the plan's expert budget: read the rest of the experts from the drive.
  if (a.offload) eo.host_mem = std::to_string(a.resident_bytes + a.expert_ram_budget);
  std::unique_ptr<Engine> e;
  if (world_size > 1) {
    // The data plane in the plan's rank order: MPI ranks renumbered, or TCP to the workers'
    // addresses.
    std::unique_ptr<parallel::Communicator> data;
    if (world) {
      data = world->split(0, a.world_rank);
    } else {
      std::vector<std::string> peers(static_cast<size_t>(world_size));
      for (const parallel::WorkerAssignment& x : p.plan.assignments) {
        const std::string& addr = p.workers[static_cast<size_t>(x.worker)].data_address;
        MOE_CHECK(!addr.empty(), "world rank ", x.world_rank, " (worker ", p.workers[static_cast<size_t>(x.worker)].id,
                  ") has no TCP data address: it runs under mpirun; start every worker of the job by hand, or all in "
                  "one mpirun");
        peers[static_cast<size_t>(x.world_rank)] = addr;
      }
      data = parallel::connect_tcp_world(std::move(*listener), a.world_rank, peers, std::chrono::seconds(60));
    }
    e = load_distributed_engine(eo, std::move(data), nullptr);  // `mpi` outlives the engine here
  } else {
    e = load_engine(eo);
  }
  const int64_t context = static_cast<int64_t>(p.job.prompt_token_ids.size()) + std::max(p.job.max_new_tokens, 1);
  e->prepare(context);
  client->report_ready();
  std::fprintf(stderr, "%s: world rank %d, layers %s, ready\n", tag.c_str(), a.world_rank,
               parallel::format_layer_ranges(std::span(&a.layers, 1)).c_str());

  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  coordinator::JobResult result;
  auto body = [&] {
    if (e->is_worker()) {
      e->serve_forward();
    } else {
      GenerationOptions g;
      g.max_new_tokens = p.job.max_new_tokens;
      g.sampling.temperature = p.job.greedy ? 0.0f : p.job.temperature;
      g.sampling.top_k = p.job.top_k;
      g.sampling.top_p = p.job.top_p;
      g.sampling.seed = p.job.seed;
      uint64_t n = 0;
      const GenerationResult r =
          generate(*e->transformer, *e->cache, e->config().vocab_size, p.job.prompt_token_ids, g, [&](int32_t) {
            client->set_progress({++n, n, since(), 0});
          });
      e->finish_forward();
      result.token_ids = r.tokens;
      if (e->tokenizer) result.text = e->tokenizer->decode(r.tokens, /*skip_special_tokens=*/true);
      result.prompt_tokens = static_cast<uint64_t>(r.prompt_tokens);
      result.prefill_seconds = r.prefill_seconds;
      result.decode_seconds = r.decode_seconds;
      result.stop_reason = r.stop_reason;
    }
    coordinator::StepMetrics m = totals(*e, since());
    if (a.world_rank == 0) m.tokens = result.token_ids.size();  // generated: the job's throughput
    client->report_metrics(std::span(&m, 1));
    if (e->dist) e->dist->control->barrier();  // every worker's figures are in before the result ends the job
    if (a.world_rank == 0) client->report_result(result);
    return 0;
  };
  return e->dist ? run_or_abort(*e, body) : body();
}

}  // namespace

Action add_worker_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "worker",
      "A worker of a coordinated job (docs/coordinator.md): mpirun -np N moe worker --coordinator ADDR.\n"
      "Registers with what it measured, loads the part the coordinator assigns, runs, reports.");
  auto o = std::make_shared<WorkerOptions>();
  cmd->add_option("--coordinator", o->connect.address, "The coordinator's address, host:port")->required();
  cmd->add_option("--token", o->connect.token, "The coordinator's shared secret (or MOE_COORDINATOR_TOKEN)");
  cmd->add_option("--tls-ca", o->connect.tls_root_cert_path, "PEM certificate to trust: connect over TLS");
  cmd->add_option("--model", o->model_dir, "The model directory here (default: the coordinator's path)");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads,-t", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd->add_option("--data-host", o->data_host,
                  "Started by hand: the address the other workers reach this one at (its TCP data plane)")
      ->capture_default_str();
  cmd->add_flag("!--no-measure", o->measure, "Skip the start-up bandwidth measurements (report them unknown)");
  return [o] {
    if (o->connect.token.empty())
      if (const char* t = std::getenv("MOE_COORDINATOR_TOKEN")) o->connect.token = t;
    return run_worker(*o);
  };
}

}  // namespace moe::cli
