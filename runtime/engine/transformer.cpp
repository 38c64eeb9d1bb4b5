#include "runtime/engine/transformer.h"

#include <cmath>

#include "runtime/core/error.h"

namespace moe {

Transformer::Transformer(const ModelConfig& config, const ModelWeights& weights, const ParallelLayout& layout,
                         Backend& backend, int64_t max_step_tokens, int64_t max_seqs)
    : c_(config),
      w_(weights),
      layout_(layout),
      b_(backend),
      max_tokens_(max_step_tokens),
      max_seqs_(max_seqs),
      heads_(layout.tp_shard(config.num_heads, "num_attention_heads")),
      kv_heads_(layout.kv_heads(config.num_kv_heads)),
      attn_scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(config.head_dim)))) {
  MOE_CHECK(max_step_tokens > 0, "Transformer: max_step_tokens must be positive");
  MOE_CHECK(max_seqs > 0, "Transformer: max_seqs must be positive");
  const int64_t m = max_step_tokens, h = c_.hidden_size;
  const int64_t qw = heads_ * c_.head_dim, kvw = kv_heads_ * c_.head_dim;
  ids_ = b_.alloc(DType::kI32, {m});
  x_ = b_.alloc(DType::kF32, {m, h});
  xn_ = b_.alloc(DType::kF32, {m, h});
  proj_ = b_.alloc(DType::kF32, {m, h});
  ffn_out_ = b_.alloc(DType::kF32, {m, h});
  q_ = b_.alloc(DType::kF32, {m, qw});
  k_ = b_.alloc(DType::kF32, {m, kvw});
  v_ = b_.alloc(DType::kF32, {m, kvw});
  attn_ = b_.alloc(DType::kF32, {m, qw});
  router_logits_ = b_.alloc(DType::kF32, {m, c_.num_experts});
  expert_in_ = b_.alloc(DType::kF32, {m, h});
  expert_out_ = b_.alloc(DType::kF32, {m, h});
  shared_gate_ = b_.alloc(DType::kF32, {m, 1});
  last_norm_ = b_.alloc(DType::kF32, {max_seqs, h});
  logits_ = b_.alloc(DType::kF32, {max_seqs, c_.vocab_size});
  logit_rows_.reserve(static_cast<size_t>(max_seqs));
  step_tokens_.reserve(static_cast<size_t>(m));
  route_ids_.resize(static_cast<size_t>(m * c_.experts_per_token));
  route_weights_.resize(route_ids_.size());
  expert_rows_.resize(static_cast<size_t>(c_.num_experts));
  expert_scales_.resize(static_cast<size_t>(c_.num_experts));
  for (size_t e = 0; e < expert_rows_.size(); ++e) {
    expert_rows_[e].reserve(static_cast<size_t>(m));
    expert_scales_[e].reserve(static_cast<size_t>(m));
  }
  used_experts_.reserve(static_cast<size_t>(c_.num_experts));

  tp_ = layout.tp_size();
  lm_head_sharded_ = layout.is_last_stage() && weights.lm_head.dim(0) < c_.vocab_size;
  if (tp_ > 1) {
    // Flat buffers for the gathers: the shards of q, k or the LM head's logits from every rank,
    // and one full-width q or k row set for the full-width q/k norm.
    const int64_t lm_rows = lm_head_sharded_ ? max_seqs * c_.vocab_size : 0;
    const bool full_norm = c_.arch->qk_norm == QkNorm::kFullWidth;
    const int64_t qk = full_norm ? m * std::max(c_.q_width(), tp_ * kvw) : 0;
    gathered_ = b_.alloc(DType::kF32, {std::max<int64_t>({lm_rows, qk, 1})});
    if (full_norm) full_width_ = b_.alloc(DType::kF32, {m * std::max(c_.q_width(), c_.kv_width())});
    for (int r = 0; r < tp_; ++r) q_blocks_.push_back(r);
    // Distinct KV blocks and the first rank holding each: rank j when tp divides the KV heads,
    // else (KV heads replicated over tp / n_kv ranks) rank j * tp / n_kv.
    const int64_t blocks = c_.num_kv_heads / kv_heads_;
    for (int64_t j = 0; j < blocks; ++j) kv_blocks_.push_back(static_cast<int32_t>(j * tp_ / blocks));
    norm_rows_.reserve(static_cast<size_t>(m * std::max<int64_t>(tp_, 1)));
  }
}

void Transformer::step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits) {
  if (delegate_) {
    for (const SeqChunk& c : chunks) check_token_ids(c.tokens);
    delegate_->step(chunks, kv, logits);
    return;
  }
  MOE_CHECK(layout_.is_first_stage() && layout_.is_last_stage(),
            "Transformer::step needs the whole model; this stage runs ", layout_.describe());
  step_tokens_.clear();
  step_rows_.clear();
  size_t with_logits = 0;
  for (const SeqChunk& c : chunks) {
    check_token_ids(c.tokens);
    step_tokens_.insert(step_tokens_.end(), c.tokens.begin(), c.tokens.end());
    step_rows_.push_back(SeqRows{static_cast<int64_t>(c.tokens.size()), c.pos0, c.blocks});
    with_logits += c.logits ? 1 : 0;
  }
  const int64_t n = set_batch(step_rows_, kv);  // checks sizes and blocks before anything runs
  embed(step_tokens_);
  run_batch_layers(n, kv);
  logit_rows_.clear();
  for (size_t i = 0; i < chunks.size(); ++i)
    if (chunks[i].logits) logit_rows_.push_back(batch_builder_.seq(i).row0 + batch_builder_.seq(i).rows - 1);
  logits.resize(with_logits * static_cast<size_t>(c_.vocab_size));
  if (!logit_rows_.empty()) logits_of_rows(logit_rows_, logits.data());
}

void Transformer::forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits,
                          std::vector<float>& logits) {
  if (delegate_) {
    check_token_ids(tokens);
    delegate_->forward(tokens, cache, all_logits, logits);
    return;
  }
  MOE_CHECK(layout_.is_first_stage() && layout_.is_last_stage(),
            "Transformer::forward needs the whole model; this stage runs ", layout_.describe());
  const int64_t vocab = c_.vocab_size;
  check_token_ids(tokens);  // all of them, before any chunk touches the cache
  logits.resize(static_cast<size_t>(all_logits ? static_cast<int64_t>(tokens.size()) * vocab : vocab));
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(max_tokens_)) {
    const size_t n = std::min(tokens.size() - begin, static_cast<size_t>(max_tokens_));
    embed(tokens.subspan(begin, n));
    run_layers(static_cast<int64_t>(n), cache);
    if (all_logits) {
      logit_rows_.clear();
      for (size_t t = 0; t < n; ++t) logit_rows_.push_back(static_cast<int32_t>(t));
      logits_of_rows(logit_rows_, logits.data() + begin * static_cast<size_t>(vocab));
    } else if (begin + n == tokens.size()) {
      logits_of_row(static_cast<int64_t>(n) - 1, logits.data());
    }
  }
}

void Transformer::check_token_ids(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    MOE_CHECK(tokens[i] >= 0 && tokens[i] < c_.vocab_size, "token id ", tokens[i], " at index ", i,
              " is outside the vocabulary [0, ", c_.vocab_size, ")");
}

void Transformer::embed(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  MOE_CHECK(n > 0 && n <= max_tokens_, "embed: ", n, " tokens, at most ", max_tokens_, " per step");
  check_token_ids(tokens);
  Tensor ids = ids_.first_rows(n);
  b_.copy_from_host(tokens.data(), static_cast<uint64_t>(n) * sizeof(int32_t), ids);
  Tensor x = x_.first_rows(n);
  b_.embedding(ids, w_.embed, x);
}

int64_t Transformer::set_batch(std::span<const SeqRows> seqs, const KvStorage& kv) {
  MOE_CHECK(!seqs.empty() && static_cast<int64_t>(seqs.size()) <= max_seqs_, "step: ", seqs.size(),
            " sequences, at least 1 and at most ", max_seqs_, " per step");
  batch_builder_.clear(kv.block_size(), kv.max_seq_len());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqRows& c = seqs[i];
    MOE_CHECK(c.rows > 0, "step: sequence ", i, " has no tokens");
    MOE_CHECK(batch_builder_.rows() + c.rows <= max_tokens_, "step: ", batch_builder_.rows() + c.rows,
              " token rows, at most ", max_tokens_, " per step");
    for (const int32_t b : c.blocks)
      MOE_CHECK(b >= 0 && b < kv.num_blocks(), "step: sequence ", i, " names KV block ", b, "; the storage has ",
                kv.num_blocks());
    batch_builder_.add(c.rows, c.pos0, c.blocks);
  }
  batch_ = &batch_builder_.batch();
  return batch_builder_.rows();
}

void Transformer::run_layers(std::span<const SeqRows> seqs, KvStorage& kv) {
  run_batch_layers(set_batch(seqs, kv), kv);
}

void Transformer::run_layers(int64_t n, KvCache& cache) {
  MOE_CHECK(cache.length() + n <= cache.capacity(), "KV cache full: ", cache.length(), " + ", n,
            " positions exceed its capacity of ", cache.capacity());
  static const int32_t kOneBlock[1] = {0};
  const SeqRows one{n, cache.length(), kOneBlock};
  run_batch_layers(set_batch(std::span<const SeqRows>(&one, 1), cache.storage()), cache.storage());
  cache.advance(n);
}

void Transformer::run_batch_layers(int64_t n, KvStorage& kv) {
  MOE_CHECK(collectives_ != nullptr || layout_.stage_size() == 1, "Transformer: ", layout_.describe(),
            " splits a stage over ", layout_.stage_size(), " ranks but no collectives were set");
  if (provider_) provider_->begin_step(n);
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    attention_block(w_.layers[i], static_cast<int64_t>(i), n, kv);
    ffn_block(w_.layers[i], n);
    if (provider_) provider_->end_layer(w_.layers[i].index, x_.first_rows(n));
    if (observer_) observer_->after_layer(w_.layers[i].index, n);
  }
  if (provider_) provider_->end_step();
  counters_.tokens += static_cast<uint64_t>(n);
  ++counters_.steps;
}

void Transformer::attention_block(const LayerWeights& w, int64_t local_layer, int64_t n, KvStorage& kv) {
  const AttentionWeights& a = w.attn;
  Tensor x = x_.first_rows(n), xn = xn_.first_rows(n);
  Tensor q = q_.first_rows(n), k = k_.first_rows(n), v = v_.first_rows(n);
  Tensor attn = attn_.first_rows(n), proj = proj_.first_rows(n);

  b_.rms_norm(x, w.attn_norm, c_.rms_norm_eps, xn);
  b_.linear(xn, a.q, a.q_bias, q);
  b_.linear(xn, a.k, a.k_bias, k);
  b_.linear(xn, a.v, a.v_bias, v);
  // q/k norm: the weight's length decides per-head (head_dim) or full-width (q/kv width) rows.
  if (!a.q_norm.empty()) {
    if (tp_ > 1 && c_.arch->qk_norm == QkNorm::kFullWidth) {
      sharded_rms_norm(q, a.q_norm, n, q_blocks_, layout_.tp_rank());
      const auto mine = static_cast<int32_t>(layout_.kv_head_begin(c_.num_kv_heads) / kv_heads_);
      sharded_rms_norm(k, a.k_norm, n, kv_blocks_, mine);
    } else {
      b_.rms_norm(q, a.q_norm, c_.rms_norm_eps, q);
      b_.rms_norm(k, a.k_norm, c_.rms_norm_eps, k);
    }
  }
  if (c_.clip_qkv) {
    b_.clamp(q, *c_.clip_qkv);
    b_.clamp(k, *c_.clip_qkv);
    b_.clamp(v, *c_.clip_qkv);
  }
  const KvBatch& batch = *batch_;
  b_.rope(q, heads_, c_.head_dim, batch.positions, c_.rope_theta);
  b_.rope(k, kv_heads_, c_.head_dim, batch.positions, c_.rope_theta);
  b_.kv_append(k, v, batch, kv.k(local_layer), kv.v(local_layer));
  b_.attention(q, kv.k(local_layer), kv.v(local_layer), batch, heads_, c_.layer_window[static_cast<size_t>(w.index)],
               attn_scale_, attn);
  b_.linear(attn, a.o, a.o_bias, proj);
  // Tensor parallel: proj is this rank's heads' share of the sum.
  if (tp_ > 1) collectives_->all_reduce_sum(proj, CommGroup::kTensor);
  b_.add(x, proj);
}

void Transformer::ffn_block(const LayerWeights& w, int64_t n) {
  Tensor x = x_.first_rows(n), xn = xn_.first_rows(n), out = ffn_out_.first_rows(n);
  b_.rms_norm(x, w.ffn_norm, c_.rms_norm_eps, xn);
  // Tensor / expert parallel: out is this rank's share (its width shard, its experts).
  if (w.is_moe) {
    moe_experts(w, xn, out, n);
    if (layout_.stage_size() > 1) collectives_->all_reduce_sum(out, CommGroup::kStage);
  } else {
    b_.swiglu_mlp(xn, w.dense, out);
    if (tp_ > 1) collectives_->all_reduce_sum(out, CommGroup::kTensor);
  }
  b_.add(x, out);
}

// out = sum over each token's top-k experts of weight * expert(xn) (+ the gated shared expert).
// Tokens are grouped per expert so each expert's weights are read once per call; experts run
// in ascending index order, as transformers accumulates them.
void Transformer::moe_experts(const LayerWeights& layer, const Tensor& xn, Tensor& out, int64_t n) {
  const MoeWeights& w = layer.moe;
  const int64_t top_k = c_.experts_per_token;
  Tensor logits = router_logits_.first_rows(n);
  b_.linear(xn, w.router, Tensor{}, logits);
  const size_t assignments = static_cast<size_t>(n * top_k);
  b_.route_topk(logits, top_k, c_.renormalize_topk, std::span(route_ids_).first(assignments),
                std::span(route_weights_).first(assignments));

  for (size_t e = 0; e < expert_rows_.size(); ++e) {
    expert_rows_[e].clear();
    expert_scales_[e].clear();
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < top_k; ++j) {
      const size_t a = static_cast<size_t>(t * top_k + j);
      const auto e = static_cast<size_t>(route_ids_[a]);
      if (!layout_.owns_expert(layer.index, route_ids_[a])) continue;  // another expert-parallel rank's
      expert_rows_[e].push_back(static_cast<int32_t>(t));
      expert_scales_[e].push_back(route_weights_[a]);
    }

  if (provider_) {
    used_experts_.clear();
    for (size_t e = 0; e < expert_rows_.size(); ++e)
      if (!expert_rows_[e].empty()) used_experts_.push_back(static_cast<int32_t>(e));
    provider_->begin_layer(layer.index, used_experts_);
    provider_->layer_input(layer.index, xn, expert_rows_);
  }

  b_.fill_zero(out);
  for (size_t e = 0; e < expert_rows_.size(); ++e) {
    const std::vector<int32_t>& rows = expert_rows_[e];
    if (rows.empty()) continue;
    const int64_t m = static_cast<int64_t>(rows.size());
    Tensor in = expert_in_.first_rows(m), y = expert_out_.first_rows(m);
    // A provider may have computed the expert itself (on the CPU, from its host copy) into y.
    const auto id = static_cast<int32_t>(e);
    if (!provider_ || !provider_->computed_output(layer.index, id, y)) {
      b_.gather_rows(xn, rows, in);
      if (provider_) {
        b_.swiglu_mlp(in, provider_->acquire(layer.index, id), y);
        provider_->release(layer.index, id);
      } else {
        b_.swiglu_mlp(in, w.experts[e], y);
      }
    }
    b_.scatter_add_rows(y, rows, expert_scales_[e], out);
    ++counters_.expert_calls;
    counters_.routed_tokens += static_cast<uint64_t>(m);
  }

  if (!w.shared_gate.empty()) {
    Tensor y = expert_out_.first_rows(n), gate = shared_gate_.first_rows(n);
    b_.swiglu_mlp(xn, w.shared, y);
    b_.linear(xn, w.shared_gate, Tensor{}, gate);
    b_.add_sigmoid_gated(y, gate, out);
  }
}

void Transformer::sharded_rms_norm(Tensor& x, const Tensor& w, int64_t n, std::span<const int32_t> block_rank,
                                   int32_t mine) {
  const int64_t width = x.dim(1), blocks = static_cast<int64_t>(block_rank.size());
  Tensor xs = x.first_rows(n);
  Tensor g = gathered_.first_rows(tp_ * n * width).reshaped({tp_ * n, width});  // rank r's rows at r * n
  collectives_->all_gather(xs, g, CommGroup::kTensor);
  // Full rows: row t = [block 0 | block 1 | ...], each block from the rank holding it.
  Tensor full = full_width_.first_rows(n * blocks * width).reshaped({n * blocks, width});
  norm_rows_.clear();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < blocks; ++j)
      norm_rows_.push_back(static_cast<int32_t>(block_rank[static_cast<size_t>(j)] * n + t));
  b_.gather_rows(g, norm_rows_, full);
  Tensor rows = full.reshaped({n, blocks * width});
  b_.rms_norm(rows, w, c_.rms_norm_eps, rows);
  norm_rows_.clear();
  for (int64_t t = 0; t < n; ++t) norm_rows_.push_back(static_cast<int32_t>(t * blocks + mine));
  b_.gather_rows(full, norm_rows_, xs);
}

void Transformer::logits_of_row(int64_t row, float* out) {
  const int32_t one[1] = {static_cast<int32_t>(row)};
  logits_of_rows(one, out);
}

void Transformer::logits_of_rows(std::span<const int32_t> rows, float* out) {
  MOE_CHECK(layout_.is_last_stage(), "logits requested from a stage that is not the last: ", layout_.describe());
  const auto vocab = static_cast<size_t>(c_.vocab_size);
  for (size_t begin = 0; begin < rows.size(); begin += static_cast<size_t>(max_seqs_)) {
    const size_t m = std::min(rows.size() - begin, static_cast<size_t>(max_seqs_));
    Tensor xn = last_norm_.first_rows(static_cast<int64_t>(m)), logits = logits_.first_rows(static_cast<int64_t>(m));
    b_.gather_rows(x_, rows.subspan(begin, m), xn);
    b_.rms_norm(xn, w_.final_norm, c_.rms_norm_eps, xn);
    if (lm_head_sharded_) {
      // This rank's vocabulary columns, gathered from every tensor rank into full rows.
      const int64_t mm = static_cast<int64_t>(m), part = w_.lm_head.dim(0);
      Tensor local = logits_.first_rows(mm).reshaped({mm * tp_, part}).first_rows(mm);
      b_.linear(xn, w_.lm_head, Tensor{}, local);
      Tensor g = gathered_.first_rows(tp_ * mm * part).reshaped({tp_ * mm, part});
      collectives_->all_gather(local, g, CommGroup::kTensor);
      norm_rows_.clear();
      for (int64_t t = 0; t < mm; ++t)
        for (int r = 0; r < tp_; ++r) norm_rows_.push_back(static_cast<int32_t>(r * mm + t));
      Tensor full = logits.reshaped({mm * tp_, part});
      b_.gather_rows(g, norm_rows_, full);
    } else {
      b_.linear(xn, w_.lm_head, Tensor{}, logits);
    }
    b_.copy_to_host(logits, out + begin * vocab, m * vocab * sizeof(float));
  }
}

}  // namespace moe
