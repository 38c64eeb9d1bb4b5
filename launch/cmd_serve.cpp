// moe serve: an OpenAI-compatible HTTP server over the batch engine (launch/serve/). Listens at
// once (GET /health is 503 until the model has loaded), loads the model in the background, then
// serves many requests at a time with continuous batching. SIGINT / SIGTERM: new requests get 503,
// running generations end, the listener closes, and the process exits 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "launch/commands.h"
#include "launch/distributed.h"
#include "launch/engine.h"
#include "launch/offload_options.h"
#include "launch/serve/api_server.h"
#include "runtime/batch/batch_engine.h"
#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"
#include "runtime/offload/budget.h"

namespace moe::cli {
namespace {

struct ServeCmdOptions {
  EngineOptions engine;
  serve::ServeOptions http;
  std::string served_name;
  int64_t max_seqs = 8;
  int64_t max_batch_tokens = 0;  // 0: --prefill-chunk
  int64_t context = 0;           // 0: min(4096, the model's)
  std::string kv_mem = "auto";
  int64_t kv_block = 16;
  std::string max_body = "4M";
  int max_n = 8;
  double startup_delay = 0;  // testing: seconds to wait before loading (/health stays 503)
};

// What the loader thread leaves for the main thread.
struct Loaded {
  std::mutex mutex;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ChatTemplate> chat_template;
  std::unique_ptr<BatchEngine> batch;
  std::string error;
  bool done = false;
};

std::string default_name(const std::string& model_dir) {
  std::filesystem::path p(model_dir);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  return p.filename().string().empty() ? model_dir : p.filename().string();
}

// Sizes the KV pool: --kv-mem bytes, or "auto": every sequence slot can reach the whole context,
// within half of the memory available now (at least one whole context).
int64_t kv_blocks_for(const ServeCmdOptions& o, const Engine& e, int64_t context) {
  const uint64_t block = KvStorage::block_bytes(e.config(), e.model->layout(), o.kv_block);
  const int64_t per_seq = (context + o.kv_block - 1) / o.kv_block;
  int64_t blocks = 0;
  if (o.kv_mem == "auto") {
    blocks = o.max_seqs * per_seq;
    const MachineMemory mem = machine_memory();
    if (e.backend->device_memory().total == 0 && mem.available > 0) {
      const auto fit = static_cast<int64_t>(mem.available / 2 / block);
      if (fit < blocks) {
        blocks = std::max(fit, per_seq);
        std::fprintf(stderr, "moe serve: KV pool capped at half the available memory: %s for %lld positions\n",
                     format_bytes(static_cast<uint64_t>(blocks) * block).c_str(),
                     static_cast<long long>(blocks * o.kv_block));
      }
    }
  } else {
    blocks = static_cast<int64_t>(parse_mem_size(o.kv_mem, "--kv-mem") / block);
  }
  MOE_CHECK(blocks >= per_seq, "--kv-mem ", o.kv_mem, " holds ", blocks * o.kv_block, " positions (",
            format_bytes(block), " per block of ", o.kv_block, "); one sequence of the --ctx-size of ", context,
            " needs ", per_seq * o.kv_block, ": raise --kv-mem or lower --ctx-size");
  return blocks;
}

// Loads the model and prepares the batch forward pass and the KV pool: what every rank of a
// distributed server does (the other ranks then serve rank 0's steps).
std::unique_ptr<Engine> load_for_serving(const ServeCmdOptions& o) {
  if (o.startup_delay > 0) std::this_thread::sleep_for(std::chrono::duration<double>(o.startup_delay));
  std::unique_ptr<Engine> e = load_engine(o.engine);
  const int64_t context =
      o.context > 0 ? o.context : std::min<int64_t>(4096, std::max<int64_t>(e->config().max_position_embeddings, 64));
  const int64_t step_tokens = o.max_batch_tokens > 0 ? o.max_batch_tokens : o.engine.prefill_chunk;
  MOE_CHECK(o.max_seqs >= 1, "--max-seqs must be at least 1");
  MOE_CHECK(o.kv_block >= 1 && o.kv_block <= 4096, "--kv-block must be in [1, 4096], got ", o.kv_block);
  const int64_t blocks = kv_blocks_for(o, *e, context);
  e->prepare_batch(o.max_seqs, step_tokens, blocks, o.kv_block, context);
  if (e->offload) e->offload->keep_step_log(false);
  return e;
}

// A rank other than 0 under mpirun: no HTTP, no output; serves rank 0's steps until it stops.
int serve_worker(const ServeCmdOptions& o, parallel::Communicator& world) {
  // Ctrl-C on mpirun reaches every rank: rank 0 shuts down and then releases this one (mpirun
  // kills what is left after its grace period).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::unique_ptr<Engine> e;
  try {
    e = load_for_serving(o);
  } catch (const AlreadyReported&) {
    throw;
  } catch (const std::exception& x) {  // after the ranks agreed: the others wait in a collective
    world.abort(1, str_cat("moe: error on rank ", world.rank(), ": ", x.what()));
  }
  return run_or_abort(*e, [&] {
    e->serve_forward();
    print_rank_stats(stderr, *e);
    return 0;
  });
}

void load(const ServeCmdOptions& o, Loaded& out) {
  std::unique_ptr<Engine> e = load_for_serving(o);
  const int64_t step_tokens = e->transformer->max_step_tokens();
  const int64_t blocks = e->pool->num_blocks();

  std::unique_ptr<ChatTemplate> tmpl;
  if (e->tokenizer && !e->tokenizer->chat_template().empty())
    tmpl = std::make_unique<ChatTemplate>(
        ChatTemplate::parse(e->tokenizer->chat_template(), o.engine.model_dir + "/tokenizer_config.json"));

  BatchEngineOptions bo;
  bo.limits = SchedulerLimits{o.max_seqs, step_tokens, std::max<int64_t>(1, blocks / 100)};
  weight_traffic(e->model->weights(), bo);
  auto batch = std::make_unique<BatchEngine>(*e->transformer, *e->pool, e->config().vocab_size,
                                             e->tokenizer ? &*e->tokenizer : nullptr, bo);
  batch->start();
  std::lock_guard lock(out.mutex);
  out.engine = std::move(e);
  out.chat_template = std::move(tmpl);
  out.batch = std::move(batch);
}

int serve(const ServeCmdOptions& o) {
  serve::ServeOptions http = o.http;
  http.max_body_bytes = parse_mem_size(o.max_body, "--max-body");
  if (http.api_key.empty())
    if (const char* k = std::getenv("MOE_API_KEY")) http.api_key = k;
  MOE_CHECK(http.http_threads >= 2, "--http-threads must be at least 2");
  check_offload_options(o.engine);

  // Under mpirun rank 0 serves HTTP and drives; the others only run its steps. MPI starts on this
  // thread (the loader and the stepping thread then call it one at a time).
  std::unique_ptr<parallel::MpiSession> mpi;
  std::unique_ptr<parallel::Communicator> world;  // for the rank, and to stop the job after a failed load
  if (distributed_requested(o.engine) && parallel::MpiSession::launched_under_mpi()) {
    mpi = std::make_unique<parallel::MpiSession>();
    world = parallel::MpiCommunicator::world();
    if (world->rank() != 0) return serve_worker(o, *world);
  }

  // SIGINT / SIGTERM are taken by sigwait() below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // the loader's "done" (or "failed")
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serve::ApiServer server(http);
  const int port = server.bind();
  std::fprintf(stderr, "moe serve: listening on http://%s:%d (loading %s)\n", http.host.c_str(), port,
               o.engine.model_dir.c_str());
  // SIGTERM to this process stops a distributed server cleanly; mpirun's own SIGTERM kills the ranks.
  if (world) std::fprintf(stderr, "moe serve: rank 0 of %d is pid %d\n", world->size(), getpid());
  std::thread listener([&] { server.run(); });

  Loaded loaded;
  std::thread loader([&] {
    try {
      load(o, loaded);
    } catch (const AlreadyReported&) {
      std::lock_guard lock(loaded.mutex);
      loaded.error = "-";  // rank 0 printed every rank's failure
    } catch (const std::exception& e) {
      if (world) world->abort(1, str_cat("moe: error on rank 0: ", e.what()));  // the others wait in a collective
      std::lock_guard lock(loaded.mutex);
      loaded.error = e.what();
    }
    {
      std::lock_guard lock(loaded.mutex);
      loaded.done = true;
    }
    kill(getpid(), SIGUSR1);
  });

  int sig = 0;
  bool ready = false;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGUSR1) break;
    std::lock_guard lock(loaded.mutex);
    if (!loaded.done) continue;
    if (!loaded.error.empty()) break;
    Engine& e = *loaded.engine;
    serve::ServeTarget t;
    t.model.name = o.served_name.empty() ? default_name(o.engine.model_dir) : o.served_name;
    t.model.aliases = {o.engine.model_dir, std::filesystem::absolute(o.engine.model_dir).string()};
    t.model.context = loaded.batch->context();
    t.model.vocab_size = e.config().vocab_size;
    t.model.tokenizer = e.tokenizer ? &*e.tokenizer : nullptr;
    t.model.chat_template = loaded.chat_template.get();
    t.model.eos_ids = e.stop_ids();
    t.model.max_n = o.max_n;
    t.engine = loaded.batch.get();
    t.kv_block_bytes = static_cast<double>(KvStorage::block_bytes(e.config(), e.model->layout(), o.kv_block));
    if (e.offload) {
      ExpertOffload* off = e.offload.get();
      t.extra_gauges = [off] {
        const OffloadStepStats s = off->stats().running_total();
        return std::vector<serve::ExtraGauge>{
            {"moe_expert_cache_hit_rate", "Fraction of routed experts found in the fast tier when needed.",
             s.hit_rate()},
            {"moe_expert_cache_hits", "Routed experts found in the fast tier (a counter).",
             static_cast<double>(s.hits)},
            {"moe_expert_cache_misses", "Routed experts read on demand (a counter).", static_cast<double>(s.misses)},
            {"moe_expert_bytes_read_nvme", "Expert bytes read from the packed store (a counter).",
             static_cast<double>(s.bytes_nvme)},
        };
      };
    }
    std::fprintf(stderr,
                 "moe serve: ready: %s as '%s', context %lld, %lld sequences x %lld rows per step, KV pool %s "
                 "(%lld blocks of %lld), loaded in %.1f s\n",
                 e.config().summary().c_str(), t.model.name.c_str(), static_cast<long long>(t.model.context),
                 static_cast<long long>(o.max_seqs), static_cast<long long>(loaded.batch->limits().max_step_tokens),
                 format_bytes(e.pool->bytes()).c_str(), static_cast<long long>(e.pool->num_blocks()),
                 static_cast<long long>(o.kv_block), e.load_seconds);
    server.set_ready(std::move(t));
    ready = true;
  }

  // Shutting down (a signal, or the load failed).
  server.begin_shutdown();
  int code = 0;
  {
    std::lock_guard lock(loaded.mutex);
    if (!loaded.done) {
      // Still loading: nothing is being served; leave without waiting for the loader.
      std::fprintf(stderr, "moe serve: %s while loading; exiting\n", sig == SIGINT ? "interrupted" : "terminated");
      server.stop();
      listener.join();
      std::fflush(stderr);
      std::_Exit(0);
    }
    if (!loaded.error.empty()) {
      if (loaded.error != "-") std::fprintf(stderr, "moe: error: %s\n", loaded.error.c_str());
      code = 1;
    }
  }
  loader.join();
  if (loaded.batch) loaded.batch->stop();  // running generations end (their clients get an error or [DONE])
  if (loaded.engine && loaded.engine->dist && loaded.batch) {
    loaded.engine->finish_forward();
    print_rank_stats(stderr, *loaded.engine);
  }
  server.stop();
  listener.join();
  if (ready) {
    const BatchEngineStats s = loaded.batch->stats();
    std::fprintf(stderr,
                 "moe serve: stopped (%s): %llu requests, %llu prompt and %llu generated tokens in %llu steps\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<unsigned long long>(s.requests_submitted),
                 static_cast<unsigned long long>(s.prompt_tokens), static_cast<unsigned long long>(s.generated_tokens),
                 static_cast<unsigned long long>(s.steps));
  }
  return code;
}

}  // namespace

Action add_serve_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model over an OpenAI-compatible HTTP API: POST /v1/completions, /v1/chat/completions (streamed\n"
      "or not), GET /v1/models, /health, /metrics, POST /tokenize, /detokenize. Many requests run at once\n"
      "(continuous batching over a paged KV cache). Binds 127.0.0.1 unless --host says otherwise.");
  auto o = std::make_shared<ServeCmdOptions>();
  add_engine_options(*cmd, o->engine);
  cmd->add_option("--host", o->http.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--port", o->http.port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--api-key", o->http.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/*, /tokenize and /detokenize (or set MOE_API_KEY)");
  cmd->add_option("--served-model-name", o->served_name,
                  "The model's name in the API (default: the model directory's name)");
  cmd->add_option("--max-seqs", o->max_seqs, "Sequences generating at once (the batch)")->capture_default_str();
  cmd->add_option("--max-batch-tokens", o->max_batch_tokens,
                  "Token rows per step: decodes plus prefill chunks (default: --prefill-chunk)");
  cmd->add_option("--ctx-size,-c", o->context,
                  "Context per sequence, prompt + completion (default: min(4096, model's))");
  cmd->add_option("--kv-mem", o->kv_mem,
                  "KV cache pool size, e.g. 8G; auto: --max-seqs full contexts within half the available RAM")
      ->capture_default_str();
  cmd->add_option("--kv-block", o->kv_block, "Positions per KV cache block")->capture_default_str();
  cmd->add_option("--http-threads", o->http.http_threads, "Connections served at once")->capture_default_str();
  cmd->add_option("--max-body", o->max_body, "Largest request body (413 beyond)")->capture_default_str();
  cmd->add_option("--max-n", o->max_n, "Most choices (n x prompts) one request may ask for")->capture_default_str();
  cmd->add_flag("--access-log", o->http.access_log, "Log every request on stderr");
  cmd->add_option("--startup-delay", o->startup_delay,
                  "Testing aid: wait this many seconds before loading (the server answers 503 meanwhile)");
  return [o] { return serve(*o); };
}

}  // namespace moe::cli
