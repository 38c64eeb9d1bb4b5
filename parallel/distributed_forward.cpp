#include "parallel/distributed_forward.h"

#include <chrono>

#include "parallel/comm_collectives.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int64_t kStop = 0, kForward = 1;
constexpr int kTagHidden = 11, kTagLogits = 12;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

DistributedForward::DistributedForward(Transformer& transformer, const ParallelLayout& layout, Communicator& control,
                                       Communicator& data, Backend& backend, int64_t vocab_size)
    : t_(transformer),
      layout_(layout),
      world_(control),
      data_(data),
      backend_(backend),
      vocab_(vocab_size),
      stage_size_(layout.tp_size() * layout.ep_size()) {
  for (const Communicator* c : {&control, &data})
    MOE_CHECK(c->size() == layout.world_size() && c->rank() == layout.rank(), "distributed forward: ", c->name(),
              " rank ", c->rank(), " of ", c->size(), " does not match the layout (", layout.describe(), ")");
}

void DistributedForward::forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits,
                                 std::vector<float>& logits) {
  MOE_CHECK(world_.rank() == 0, "distributed forward: only rank 0 drives the model");
  MOE_CHECK(!finished_, "distributed forward: called after finish()");
  MOE_CHECK(cache.length() + static_cast<int64_t>(tokens.size()) <= cache.capacity(), "KV cache full: ", cache.length(),
            " + ", tokens.size(), " positions exceed its capacity of ", cache.capacity());
  Header h{kForward, cache.length(), static_cast<int64_t>(tokens.size()), all_logits ? 1 : 0};
  world_.broadcast(&h, sizeof h, 0);
  tokens_.assign(tokens.begin(), tokens.end());
  world_.broadcast(tokens_.data(), tokens_.size() * sizeof(int32_t), 0);
  run(h, tokens_, cache, logits);
}

void DistributedForward::serve(KvCache& cache) {
  MOE_CHECK(world_.rank() != 0, "distributed forward: rank 0 drives; serve() is for the other ranks");
  for (;;) {
    Header h;
    world_.broadcast(&h, sizeof h, 0);
    if (h.kind == kStop) return;
    MOE_CHECK(h.kind == kForward && h.tokens > 0 && h.pos0 >= 0, "distributed forward: rank ", world_.rank(),
              " received a malformed command (kind ", h.kind, ", ", h.tokens, " tokens at position ", h.pos0, ")");
    tokens_.resize(static_cast<size_t>(h.tokens));
    world_.broadcast(tokens_.data(), tokens_.size() * sizeof(int32_t), 0);
    run(h, tokens_, cache, logits_);
  }
}

void DistributedForward::finish() {
  if (finished_ || world_.rank() != 0) return;
  finished_ = true;
  Header h{kStop, 0, 0, 0};
  world_.broadcast(&h, sizeof h, 0);
}

void DistributedForward::run(const Header& h, std::span<const int32_t> tokens, KvCache& cache,
                             std::vector<float>& logits) {
  MOE_CHECK(h.pos0 <= cache.length(), "distributed forward: rank ", world_.rank(), " has ", cache.length(),
            " cached positions; the command starts at ", h.pos0);
  cache.truncate(h.pos0);
  const int rank = world_.rank();
  const bool first = layout_.is_first_stage(), last = layout_.is_last_stage();
  const int64_t n = h.tokens, chunk = t_.max_step_tokens();
  const auto vocab = static_cast<size_t>(vocab_);
  if (last) logits.resize(h.all_logits ? static_cast<size_t>(n) * vocab : vocab);
  std::vector<int32_t> rows;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t k = std::min(chunk, n - begin);
    if (first) {
      t_.embed(tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(k)));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      recv_rows(data_, backend_, t_.hidden(), k, rank - stage_size_, kTagHidden, staging_);
      counters_.recv_seconds += since(t0);
      ++counters_.recvs;
      counters_.bytes_received += static_cast<uint64_t>(k * t_.hidden().dim(1)) * sizeof(float);
    }
    t_.run_layers(k, cache);
    if (!last) {
      const auto t0 = std::chrono::steady_clock::now();
      send_rows(data_, backend_, t_.hidden(), k, rank + stage_size_, kTagHidden, staging_);
      counters_.send_seconds += since(t0);
      ++counters_.sends;
      counters_.bytes_sent += static_cast<uint64_t>(k * t_.hidden().dim(1)) * sizeof(float);
    } else if (h.all_logits) {
      rows.clear();
      for (int64_t r = 0; r < k; ++r) rows.push_back(static_cast<int32_t>(r));
      t_.logits_of_rows(rows, logits.data() + static_cast<size_t>(begin) * vocab);
    } else if (begin + k == n) {
      t_.logits_of_row(k - 1, logits.data());
    }
  }
  // The last stage's first rank hands the logits to rank 0 (the other ranks of that stage hold
  // the same logits after the LM head's gather).
  const int last_rank0 = (layout_.pp_size() - 1) * stage_size_;
  if (last_rank0 == 0) return;
  const size_t bytes = (h.all_logits ? static_cast<size_t>(n) : 1) * vocab * sizeof(float);
  const auto t0 = std::chrono::steady_clock::now();
  if (rank == last_rank0) {
    world_.send(logits.data(), bytes, 0, kTagLogits);
    counters_.send_seconds += since(t0);
    ++counters_.sends;
    counters_.bytes_sent += bytes;
  } else if (rank == 0) {
    logits.resize(bytes / sizeof(float));
    world_.recv(logits.data(), bytes, last_rank0, kTagLogits);
    counters_.recv_seconds += since(t0);
    ++counters_.recvs;
    counters_.bytes_received += bytes;
  }
}

}  // namespace moe::parallel
