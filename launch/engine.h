// What `moe run` and `moe chat` share: loading a model directory into a ready-to-generate
// engine (backend, weights, forward pass, KV cache, tokenizer when present), the sampling
// flags, the stop ids, and the stats block.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/parallel_setup.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/generator.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/kv_pool.h"
#include "runtime/engine/transformer.h"
#include "runtime/model/model.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/quant/convert.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe::cli {

struct EngineOptions {
  std::string model_dir;
  std::string device = "cpu";
  int threads = 0;
  int64_t prefill_chunk = 256;
  std::string quant;              // a recipe: quantize a Hugging Face directory on load (cached)
  std::string quantizer = "hqq";  // rtn | hqq
  bool verify = true;             // check packed-store checksums at load
  // Expert offloading (docs/offloading.md): on when host_mem is set.
  std::string host_mem;    // --host-mem: RAM budget (dense + KV + workspace + expert slots), or "auto"
  std::string gpu_mem;     // --gpu-mem: VRAM budget (GPU runs; refused on the CPU backend)
  OffloadOptions offload;  // --cache-policy, --miss-policy, --prefetch-depth, --expert-reader
  std::string miss_policy = "fetch";
  std::string expert_reader = "auto";
  std::string offload_stats_file;  // --offload-stats: per-step metrics as JSON lines
  std::string placement_file;      // --placement: static placement from `moe profile` (also --ep's)
  // Several processes (docs/parallel.md): --tp, --pp, --ep, --layers, --comm.
  parallel::ParallelSpec parallel;
  std::string comm = "auto";  // mpi | nccl | auto (nccl on a GPU device)
};

struct Distributed;  // launch/distributed.h

// Registers --host-mem, --gpu-mem, --cache-policy, --miss-policy, --prefetch-depth,
// --expert-reader, --offload-stats, --placement (part of add_engine_options).
// --model's check: an existing directory (Hugging Face or packed store) or a GGUF file.
CLI::Validator model_path_check();

void add_offload_options(CLI::App& cmd, EngineOptions& o);

// Registers --tp, --pp, --ep, --layers, --comm (part of add_engine_options).
void add_parallel_options(CLI::App& cmd, EngineOptions& o);

// Registers --model, --device, --threads, --prefill-chunk, --quant, --quantizer, --no-verify.
void add_engine_options(CLI::App& cmd, EngineOptions& o);
// Registers --temperature, --top-k, --top-p, --seed.
void add_sampling_options(CLI::App& cmd, SamplingParams& p);

struct Engine {
  std::unique_ptr<Backend> backend;  // --device: CpuBackend or CudaBackend (runtime/backend/backend_factory.h)
  std::unique_ptr<Model> model;
  std::unique_ptr<Transformer> transformer;
  std::unique_ptr<KvCache> cache;      // moe run / chat: one sequence
  std::unique_ptr<KvPool> pool;        // moe serve: the paged KV cache of every sequence
  std::optional<Tokenizer> tokenizer;  // when the directory has tokenizer.json
  double load_seconds = 0;
  std::string model_dir_for_messages;
  std::string loaded_from;  // the directory actually loaded (the cache entry under --quant)
  int64_t prefill_chunk = 256;
  EngineOptions options;                   // as loaded (offloading is set up by prepare())
  std::unique_ptr<ExpertOffload> offload;  // when --host-mem is given
  std::unique_ptr<Distributed> dist;       // under mpirun (launch/distributed.h); destroyed first

  Engine();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // This process is a rank other than 0 of a distributed engine: it serves rank 0's forward
  // calls (serve_forward) and prints nothing.
  bool is_worker() const;
  // Ranks other than 0: runs rank 0's forward calls until it finishes.
  void serve_forward();
  // Rank 0 of a distributed engine: tells the other ranks generation is over.
  void finish_forward();

  const ModelConfig& config() const { return model->config(); }
  // Allocates the forward pass's activations and a KV cache of `context` positions. Meant to be
  // called once: the backend's arena keeps earlier allocations until it is destroyed. Distributed:
  // every rank calls it; rank 0's `context` is used everywhere.
  void prepare(int64_t context);
  // moe serve: the forward pass for `max_seqs` sequences and `max_step_tokens` rows per step, and a
  // KV pool of `kv_blocks` blocks of `block_size` positions, each sequence up to `context`. Once.
  // Distributed: every rank calls it; rank 0's sizes are used everywhere, and the fewest blocks
  // any rank offered.
  void prepare_batch(int64_t max_seqs, int64_t max_step_tokens, int64_t kv_blocks, int64_t block_size, int64_t context);
  // Bytes of the KV cache or pool prepared.
  uint64_t kv_bytes() const;
  // The model's EOS ids (config.json, generation_config.json) and the tokenizer's eos token.
  std::vector<int32_t> stop_ids() const;
  // Errors naming the directory when there is no tokenizer.json.
  const Tokenizer& require_tokenizer(const char* why) const;
};

// "1,415,2936" (--tokens): token ids; throws moe::Error naming the item that is not one.
std::vector<int32_t> parse_token_list(const std::string& text);

// Parses --quantizer.
QuantizeOptions quantize_options(const std::string& quantizer);

// Loads backend, weights and tokenizer; call prepare() before generating. With o.quant, a
// Hugging Face directory is converted into the quantization cache first (once).
std::unique_ptr<Engine> load_engine(const EngineOptions& o);

// The tokenizer of a model: a directory's tokenizer.json (+ tokenizer_config.json), or a GGUF
// file's tokenizer.* metadata (runtime/tokenizer/gguf_vocab.h). nullopt when it has none (token
// ids in and out only). Throws moe::Error for one that is there but malformed.
std::optional<Tokenizer> load_model_tokenizer(const std::filesystem::path& model);

// Prints each of the config's warnings (ModelConfig::warnings: what it accepted but ignored) to
// stderr as "warning: ...".
void print_config_warnings(const ModelConfig& c);

// The stats block: model, weights, backend, load, prompt and decode speed, stop reason.
void print_stats(std::FILE* out, const Engine& e, const GenerationResult& r, const SamplingParams& s,
                 int64_t reused_tokens = 0);

}  // namespace moe::cli
