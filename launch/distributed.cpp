#include "launch/distributed.h"

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include "launch/engine.h"
#include "launch/offload_options.h"
#include "parallel/layer_planner.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/core/error.h"
#ifdef MOE_HAVE_NCCL
#include "parallel/nccl_communicator.h"
#endif

namespace moe::cli {
namespace {

// One rank's word after loading: it loaded (and what: the fingerprint every rank must share), or
// why it could not. Fixed size so one all_gather carries everyone's.
struct Status {
  int32_t ok = 0;
  char host[60] = {};
  char text[1984] = {};
};

void put(char* dst, size_t cap, const std::string& s) {
  const size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

std::string fingerprint(const Engine& e, const parallel::ParallelSpec& s) {
  const ModelConfig& c = e.config();
  return str_cat(c.summary(), "; weights ", e.model->packed() ? e.model->packed()->recipe() : std::string("as stored"),
                 "; ", s.describe(), ", layers ", parallel::format_layer_ranges(parallel::stage_ranges(c, s)),
                 "; device ", e.options.device, "; prefill chunk ", e.prefill_chunk, "; offload ",
                 offload_requested(e.options) ? "on" : "off");
}

// Every rank's status to every rank; throws on all of them when any failed or disagrees.
void agree(parallel::Communicator& world, const Status& mine) {
  std::vector<Status> all(static_cast<size_t>(world.size()));
  world.all_gather(&mine, sizeof mine, all.data());
  std::string problems;
  for (size_t r = 0; r < all.size(); ++r)
    if (!all[r].ok) problems += str_cat("\n  rank ", r, " on ", all[r].host, ": ", all[r].text);
  if (problems.empty())
    for (size_t r = 1; r < all.size(); ++r)
      if (std::strcmp(all[r].text, all[0].text) != 0)
        problems += str_cat("\n  rank ", r, " on ", all[r].host, " has ", all[r].text, "\n  rank 0 on ", all[0].host,
                            " has ", all[0].text);
  if (problems.empty()) return;
  // Rank 0 prints the one message before anyone exits: mpirun stops the job at the first rank
  // that exits with an error, which could cut rank 0 off before it printed.
  if (world.rank() == 0) {
    std::fprintf(stderr, "moe: error: the %d ranks could not start together:%s\n", world.size(), problems.c_str());
    std::fflush(stderr);
  }
  world.barrier();
  throw AlreadyReported();
}

// With offloading, this rank's expert cache and prefetcher (its own layers and experts).
std::string offload_line(const Engine& e) {
  if (!e.offload) return "";
  const PrefetchCounts& c = e.offload->prefetch_totals();
  const OffloadStepStats t = e.offload->stats().running_total();
  const double hits = t.used ? static_cast<double>(t.hits) / static_cast<double>(t.used) : 0;
  return str_cat("; experts: hit rate ", 100 * hits, "%, prefetch recall ", 100 * c.recall(), "%, precision ",
                 100 * c.precision(), "%");
}

// Cross-device prefetch hints this rank's stage sent and received.
std::string hint_line(const Engine& e) {
  const parallel::DistributedForward* f = e.dist->driver.get();
  if (!f || (f->hints_sent() == 0 && f->hints_received() == 0)) return "";
  return str_cat("; stage hints sent ", f->hints_sent(), ", received ", f->hints_received());
}

}  // namespace

std::string host_name() {
  char buf[64] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

bool distributed_requested(const EngineOptions& o) {
  if (!o.parallel.is_single()) return true;
  if (!parallel::MpiSession::launched_under_mpi()) return false;
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size == nullptr) size = std::getenv("PMI_SIZE");
  return size != nullptr && std::atoi(size) > 1;
}

std::unique_ptr<Engine> load_distributed_engine(const EngineOptions& o) {
  MOE_CHECK(parallel::MpiSession::launched_under_mpi(), o.parallel.describe(), " needs ", o.parallel.world_size(),
            " processes: launch with mpirun -np ", o.parallel.world_size(), " (or srun --mpi=pmix -n ",
            o.parallel.world_size(), ")");
  auto mpi = std::make_unique<parallel::MpiSession>();
  return load_distributed_engine(o, parallel::MpiCommunicator::world(), std::move(mpi));
}

std::unique_ptr<Engine> load_distributed_engine(const EngineOptions& o, std::unique_ptr<parallel::Communicator> world,
                                                std::unique_ptr<parallel::MpiSession> mpi) {
  const auto t0 = std::chrono::steady_clock::now();
  auto e = std::make_unique<Engine>();
  e->dist = std::make_unique<Distributed>();
  Distributed& d = *e->dist;
  d.spec = o.parallel;
  d.spec.placement = o.parallel.ep > 1 ? o.placement_file : "";
  d.mpi = std::move(mpi);
  d.control = std::move(world);
  e->model_dir_for_messages = o.model_dir;
  e->prefill_chunk = o.prefill_chunk;
  e->options = o;
  e->loaded_from = o.model_dir;

  // Everything that can fail on one rank alone happens before the ranks compare notes.
  Status mine;
  put(mine.host, sizeof mine.host, host_name());
  try {
    check_offload_options(o);
    MOE_CHECK(o.prefill_chunk > 0, "--prefill-chunk must be positive");
    MOE_CHECK(o.quant.empty(), "--quant with ", d.spec.describe(),
              ": convert the model once first (moe convert --model DIR --quant RECIPE --out PACKED) and give "
              "every rank the packed store");
    MOE_CHECK(!(offload_requested(o) && d.spec.tp > 1), "--tp ", d.spec.tp,
              " with expert offloading: offloaded experts are read whole; use --ep or --pp with --host-mem");
    const std::filesystem::path dir = o.model_dir;
    const ParallelLayout layout = parallel::make_layout(Model::read_config(dir), d.spec, d.rank(), d.size());
    e->backend = make_backend(o.device, o.threads);
    e->model = Model::load(dir, *e->backend, &layout, o.verify,
                           offload_requested(o) ? ExpertBinding::kMapped : ExpertBinding::kResident);
    if (d.rank() == 0) print_config_warnings(e->model->config());
    e->tokenizer = load_model_tokenizer(dir);
    mine.ok = 1;
    put(mine.text, sizeof mine.text, fingerprint(*e, d.spec));
  } catch (const std::exception& x) {
    put(mine.text, sizeof mine.text, x.what());
  }
  agree(*d.control, mine);

  std::string comm = o.comm;
  if (comm == "auto") comm = e->backend->device_memory().total > 0 ? "nccl" : "mpi";
  if (comm == "nccl") {
#ifdef MOE_HAVE_NCCL
    const std::string& dev = o.device;
    const int device = dev.rfind("cuda:", 0) == 0 ? std::atoi(dev.c_str() + 5) : 0;
    d.data = parallel::NcclCommunicator::create(*d.control, device);
#else
    fail("--comm nccl: this build has no NCCL");
#endif
  } else {
    MOE_CHECK(comm == "mpi", "--comm must be mpi, nccl or auto, got '", o.comm, "'");
  }
  d.comms = parallel::make_stage_comms(d.data_comm(), e->model->layout(), *e->backend);
  e->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return e;
}

void prepare_distributed(Engine& e) {
  Distributed& d = *e.dist;
  e.transformer->set_collectives(d.comms.collectives.get());
  d.driver = std::make_unique<parallel::DistributedForward>(*e.transformer, e.model->layout(), *d.control,
                                                            d.data_comm(), *e.backend, e.config().vocab_size);
  if (d.drives()) e.transformer->set_forward_delegate(d.driver.get());
  // Offloaded experts on several stages: each stage's hidden state goes ahead to the next one's
  // prefetcher (the same options on every rank, so both ends agree).
  if (offload_requested(e.options)) d.driver->enable_stage_hints(e.options.offload.prefetch_depth);
}

void print_rank_stats(std::FILE* out, Engine& e) {
  Distributed& d = *e.dist;
  struct Line {
    char text[400] = {};
  };
  const ModelWeights& w = e.model->weights();
  const parallel::CommCounters& c = d.comms.collectives->counters();
  const parallel::PipelineCounters& p = d.driver ? d.driver->counters() : parallel::PipelineCounters{};
  Line mine;
  put(mine.text, sizeof mine.text,
      str_cat("rank ", d.rank(), " on ", host_name(), ": ", e.model->layout().describe(), ", weights ",
              static_cast<double>(w.bytes) / 1e6, " MB; collectives ", c.calls, " calls, ",
              static_cast<double>(c.bytes) / 1e6, " MB, ", c.seconds, " s; pipeline sent ",
              static_cast<double>(p.bytes_sent) / 1e6, " MB in ", p.send_seconds, " s, received ",
              static_cast<double>(p.bytes_received) / 1e6, " MB in ", p.recv_seconds, " s (waiting included)",
              offload_line(e), hint_line(e)));
  std::vector<Line> all(static_cast<size_t>(d.size()));
  d.control->all_gather(&mine, sizeof mine, all.data());
  if (!d.drives()) return;
  std::fprintf(out, "parallel  %s over %d ranks (%s)\n", d.spec.describe().c_str(), d.size(),
               d.data ? "nccl data, mpi control" : d.control->name().c_str());
  for (const Line& l : all) std::fprintf(out, "          %s\n", l.text);
}

int run_or_abort(Engine& e, const std::function<int()>& body) {
  try {
    return body();
  } catch (const AlreadyReported&) {
    throw;
  } catch (const std::exception& x) {
    e.dist->control->abort(1, str_cat("moe: error on rank ", e.dist->rank(), ": ", x.what()));
  }
  return 1;  // not reached: abort() ends the job
}

}  // namespace moe::cli
