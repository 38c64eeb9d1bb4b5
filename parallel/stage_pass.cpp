#include "parallel/stage_pass.h"

#include <algorithm>
#include <chrono>

#include "parallel/comm_collectives.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int kTagHidden = 11;
constexpr int kTagHint = 13;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

StagePass::StagePass(Transformer& t, const ParallelLayout& layout, Communicator& data, Backend& backend,
                     int64_t vocab_size)
    : t_(t), layout_(layout), data_(data), backend_(backend), vocab_(vocab_size) {}

void StagePass::enable_stage_hints(int64_t depth) {
  if (depth <= 0 || layout_.pp_size() == 1) return;
  const LayerRange& r = layout_.layers();
  if (!layout_.is_last_stage()) hint_layer_ = std::max(r.begin, r.end - depth);
  if (!layout_.is_first_stage()) {
    receive_hints_ = true;
    hint_ = backend_.alloc(DType::kF32, {t_.max_step_tokens(), t_.hidden().dim(1)});
  }
}

void StagePass::after_layer(int64_t layer, int64_t rows) {
  if (layer != hint_layer_) return;
  const auto t0 = std::chrono::steady_clock::now();
  send_rows(data_, backend_, t_.hidden(), rows, data_.rank() + layout_.stage_size(), kTagHint, staging_);
  count_send(static_cast<uint64_t>(rows * t_.hidden().dim(1)) * sizeof(float), since(t0));
  ++hints_sent;
}

void StagePass::receive_hint(int64_t rows) {
  if (!receive_hints_) return;
  const auto t0 = std::chrono::steady_clock::now();
  recv_rows(data_, backend_, hint_, rows, data_.rank() - layout_.stage_size(), kTagHint, staging_);
  count_recv(static_cast<uint64_t>(rows * hint_.dim(1)) * sizeof(float), since(t0));
  ++hints_received;
  // Predict this stage's first layers (the ones after the previous stage's last).
  if (ExpertProvider* p = t_.expert_provider()) p->hint(layout_.layers().begin - 1, hint_.first_rows(rows));
}

void StagePass::begin_layers() {
  if (hint_layer_ >= 0) t_.set_layer_observer(this);
}

void StagePass::end_layers() {
  if (hint_layer_ >= 0) t_.set_layer_observer(nullptr);
}

void StagePass::count_send(uint64_t bytes, double seconds) {
  ++counters.sends;
  counters.bytes_sent += bytes;
  counters.send_seconds += seconds;
}

void StagePass::count_recv(uint64_t bytes, double seconds) {
  ++counters.recvs;
  counters.bytes_received += bytes;
  counters.recv_seconds += seconds;
}

void StagePass::run(std::span<const int32_t> tokens, int64_t n, KvCache& cache, bool all_logits,
                    std::vector<float>& logits) {
  const int rank = data_.rank(), stage = layout_.stage_size();
  const bool first = layout_.is_first_stage(), last = layout_.is_last_stage();
  const auto vocab = static_cast<size_t>(vocab_);
  if (last) logits.resize(all_logits ? static_cast<size_t>(n) * vocab : vocab);
  for (int64_t begin = 0; begin < n; begin += t_.max_step_tokens()) {
    const int64_t k = std::min(t_.max_step_tokens(), n - begin);
    const auto bytes = static_cast<uint64_t>(k * t_.hidden().dim(1)) * sizeof(float);
    if (first) {
      t_.embed(tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(k)));
    } else {
      receive_hint(k);
      const auto t0 = std::chrono::steady_clock::now();
      recv_rows(data_, backend_, t_.hidden(), k, rank - stage, kTagHidden, staging_);
      count_recv(bytes, since(t0));
    }
    begin_layers();
    t_.run_layers(k, cache);
    end_layers();
    if (!last) {
      const auto t0 = std::chrono::steady_clock::now();
      send_rows(data_, backend_, t_.hidden(), k, rank + stage, kTagHidden, staging_);
      count_send(bytes, since(t0));
    } else if (all_logits) {
      rows_.clear();
      for (int64_t r = 0; r < k; ++r) rows_.push_back(static_cast<int32_t>(r));
      t_.logits_of_rows(rows_, logits.data() + static_cast<size_t>(begin) * vocab);
    } else if (begin + k == n) {
      t_.logits_of_row(k - 1, logits.data());
    }
  }
}

void StagePass::run_step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits) {
  const int rank = data_.rank(), stage = layout_.stage_size();
  const bool first = layout_.is_first_stage(), last = layout_.is_last_stage();
  step_tokens_.clear();
  step_seqs_.clear();
  rows_.clear();
  int64_t n = 0;
  for (const SeqChunk& c : chunks) {
    const auto rows = static_cast<int64_t>(c.tokens.size());
    step_tokens_.insert(step_tokens_.end(), c.tokens.begin(), c.tokens.end());
    step_seqs_.push_back(SeqRows{rows, c.pos0, c.blocks});
    n += rows;
    if (c.logits) rows_.push_back(static_cast<int32_t>(n - 1));
  }
  MOE_CHECK(n <= t_.max_step_tokens(), "step: ", n, " token rows, at most ", t_.max_step_tokens(), " per step");
  const auto bytes = static_cast<uint64_t>(n * t_.hidden().dim(1)) * sizeof(float);
  if (first) {
    t_.embed(step_tokens_);
  } else {
    receive_hint(n);
    const auto t0 = std::chrono::steady_clock::now();
    recv_rows(data_, backend_, t_.hidden(), n, rank - stage, kTagHidden, staging_);
    count_recv(bytes, since(t0));
  }
  begin_layers();
  t_.run_layers(step_seqs_, kv);
  end_layers();
  if (!last) {
    const auto t0 = std::chrono::steady_clock::now();
    send_rows(data_, backend_, t_.hidden(), n, rank + stage, kTagHidden, staging_);
    count_send(bytes, since(t0));
  } else {
    logits.resize(rows_.size() * static_cast<size_t>(vocab_));
    if (!rows_.empty()) t_.logits_of_rows(rows_, logits.data());
  }
}

}  // namespace moe::parallel
