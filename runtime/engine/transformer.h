// The forward pass of a MoE decoder, written once over the Backend interface and driven by the
// architecture table (runtime/model/architecture.h) and the parallel layout. One stage of a
// pipeline: the first stage embeds tokens, every stage runs its layer range, the last stage
// produces logits. With the single layout all three happen in forward().
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/engine/expert_provider.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/engine/stage_collectives.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"

namespace moe {

// Counted per forward call, never logged on the hot path.
struct ForwardCounters {
  uint64_t tokens = 0;
  uint64_t steps = 0;          // run_layers calls (forward passes over a step's rows)
  uint64_t expert_calls = 0;   // (expert, layer) pairs run: each one reads that expert's weights once
  uint64_t routed_tokens = 0;  // token-expert assignments
};

// One sequence's rows in a step, as a pipeline stage sees them (no token ids).
struct SeqRows {
  int64_t rows = 0;                 // its new rows in this step
  int64_t pos0 = 0;                 // positions already in its cache (the first new row's position)
  std::span<const int32_t> blocks;  // its block table in the KvStorage: room for pos0 + rows
};

// One sequence's part of a multi-sequence step.
struct SeqChunk {
  std::span<const int32_t> tokens;  // its new tokens: a prefill chunk, or one decode token
  int64_t pos0 = 0;                 // positions already in its cache (the first new token's position)
  std::span<const int32_t> blocks;  // its block table in the KvStorage: room for pos0 + tokens.size()
  bool logits = true;               // compute the logits of its last row
};

// Runs forward() and step() for a model split over processes (parallel/distributed_forward.h):
// the driving rank's Transformer hands the whole call to it, after checking the token ids.
class ForwardDelegate {
 public:
  virtual ~ForwardDelegate() = default;
  virtual void forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits,
                       std::vector<float>& logits) = 0;
  virtual void step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits) = 0;
};

// Called after each of this stage's layers with the residual stream (hidden()[0:rows]): how a
// pipeline stage sends its hidden state ahead to the next stage's prefetcher.
class LayerObserver {
 public:
  virtual ~LayerObserver() = default;
  virtual void after_layer(int64_t layer, int64_t rows) = 0;
};

class Transformer {
 public:
  // Allocates all activations for up to `max_step_tokens` token rows and `max_seqs` sequences per
  // step; no allocation happens afterwards. References must outlive the Transformer.
  Transformer(const ModelConfig& config, const ModelWeights& weights, const ParallelLayout& layout, Backend& backend,
              int64_t max_step_tokens, int64_t max_seqs = 1);

  int64_t max_step_tokens() const { return max_tokens_; }
  int64_t max_seqs() const { return max_seqs_; }

  // One forward pass over the rows of several sequences (at most max_seqs chunks, at most
  // max_step_tokens rows in all), each at its own positions with its own blocks of `kv`: the dense
  // weights and each routed expert are read once for all the rows routed to them. Writes one row
  // of vocab floats per chunk with `logits` set, in chunk order, to `logits`. A row's result does
  // not depend on the other rows. Throws moe::Error for a token id outside the vocabulary or a
  // chunk whose blocks cannot hold its positions, before any cache is touched.
  void step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits);

  // Single-sequence convenience: runs `tokens` at positions cache.length()... through the whole
  // model (in chunks of max_step_tokens), advances the cache, and writes logits to `logits`: the
  // last token's (vocab floats), or every token's (T * vocab floats, row-major) when `all_logits`.
  // Throws moe::Error for a token id outside the vocabulary or a full KV cache.
  void forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits, std::vector<float>& logits);

  // ---- pipeline stage pieces ----
  // First stage: hidden()[0:T] = embedding of tokens (T <= max_step_tokens).
  void embed(std::span<const int32_t> tokens);
  // This stage's layers over hidden()[0:rows] for the sequences `seqs` (rows in their order).
  void run_layers(std::span<const SeqRows> seqs, KvStorage& kv);
  // One sequence: this stage's layers over hidden()[0:T] at positions cache.length()..; advances
  // the cache.
  void run_layers(int64_t n_tokens, KvCache& cache);
  // Last stage: logits of hidden() row `row` into out[0:vocab].
  void logits_of_row(int64_t row, float* out);
  // Last stage: logits of hidden() rows `rows` into out (rows.size() x vocab), the LM head read
  // once per max_seqs rows.
  void logits_of_rows(std::span<const int32_t> rows, float* out);
  // The residual stream (max_step_tokens, hidden): what one stage hands to the next.
  Tensor& hidden() { return x_; }

  const ForwardCounters& counters() const { return counters_; }

  // Routed experts come from `p` (not owned; null: ModelWeights' resident experts, the default).
  void set_expert_provider(ExpertProvider* p) { provider_ = p; }
  // Tensor / expert parallelism: the partial sums and sharded activations of this stage's ranks
  // go through `c` (not owned). Required when the layout's stage has more than one rank.
  void set_collectives(StageCollectives* c) { collectives_ = c; }
  // forward() and step() hand every call to `d` (not owned) instead of running it here.
  void set_forward_delegate(ForwardDelegate* d) { delegate_ = d; }
  // `o` (not owned; null: none) is called after every layer of run_layers.
  void set_layer_observer(LayerObserver* o) { observer_ = o; }
  ExpertProvider* expert_provider() const { return provider_; }

 private:
  void check_token_ids(std::span<const int32_t> tokens) const;
  // Fills batch_ (and its arrays) for `seqs` over `kv`; returns the step's rows.
  int64_t set_batch(std::span<const SeqRows> seqs, const KvStorage& kv);
  void run_batch_layers(int64_t n, KvStorage& kv);
  void attention_block(const LayerWeights& w, int64_t local_layer, int64_t n, KvStorage& kv);
  void ffn_block(const LayerWeights& w, int64_t n);
  void moe_experts(const LayerWeights& layer, const Tensor& xn, Tensor& out, int64_t n);
  // Tensor parallel with a q/k norm over the full width: x (n, local width) = this rank's
  // columns of rms_norm(every rank's columns); `blocks` distinct column blocks, block j held by
  // tensor rank block_rank[j], this rank's is `mine`.
  void sharded_rms_norm(Tensor& x, const Tensor& w, int64_t n, std::span<const int32_t> block_rank, int32_t mine);

  const ModelConfig& c_;
  const ModelWeights& w_;
  const ParallelLayout& layout_;
  Backend& b_;
  int64_t max_tokens_;
  int64_t max_seqs_;
  int64_t heads_, kv_heads_;  // this rank's share
  float attn_scale_;
  ForwardCounters counters_;
  ExpertProvider* provider_ = nullptr;
  StageCollectives* collectives_ = nullptr;
  ForwardDelegate* delegate_ = nullptr;
  LayerObserver* observer_ = nullptr;
  int tp_ = 1;
  bool lm_head_sharded_ = false;
  std::vector<int32_t> q_blocks_, kv_blocks_;  // sharded_rms_norm: the rank holding each block
  std::vector<int32_t> norm_rows_;

  // Activations, (max_tokens, width) each.
  Tensor ids_;                      // (M) I32
  Tensor x_, xn_, proj_, ffn_out_;  // (M, H)
  Tensor q_, k_, v_, attn_;         // (M, q_width), (M, kv_width) x2, (M, q_width)
  Tensor router_logits_;            // (M, E)
  Tensor expert_in_, expert_out_;   // (M, H) rows routed to one expert
  Tensor shared_gate_;              // (M, 1)
  Tensor last_norm_, logits_;       // (max_seqs, H), (max_seqs, V): the LM head's rows
  // Tensor parallel only: gathered shards (flat; viewed per use).
  Tensor gathered_, full_width_;
  // The step's sequences, reused every step.
  KvBatchBuilder batch_builder_;
  const KvBatch* batch_ = nullptr;  // batch_builder_'s batch during a step
  std::vector<int32_t> logit_rows_;
  std::vector<int32_t> step_tokens_;
  std::vector<SeqRows> step_rows_;
  // Host-side routing, reused every call.
  std::vector<int32_t> route_ids_;
  std::vector<float> route_weights_;
  std::vector<std::vector<int32_t>> expert_rows_;
  std::vector<std::vector<float>> expert_scales_;
  std::vector<int32_t> used_experts_;  // this layer's routed experts, ascending (provider only)
};

}  // namespace moe
