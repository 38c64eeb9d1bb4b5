#include "parallel/distributed_forward.h"

#include <chrono>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int64_t kStop = 0, kForward = 1;
constexpr int kTagLogits = 12;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

DistributedForward::DistributedForward(Transformer& transformer, const ParallelLayout& layout, Communicator& control,
                                       Communicator& data, Backend& backend, int64_t vocab_size)
    : layout_(layout), world_(control), vocab_(vocab_size), pass_(transformer, layout, data, backend, vocab_size) {
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
  pass_.run(tokens, h.tokens, cache, h.all_logits != 0, logits);
  // The last stage's first rank hands the logits to rank 0 (the other ranks of that stage hold
  // the same logits after the LM head's gather).
  const int last_rank0 = (layout_.pp_size() - 1) * layout_.stage_size();
  if (last_rank0 == 0) return;
  const size_t bytes = static_cast<size_t>(h.all_logits ? h.tokens : 1) * static_cast<size_t>(vocab_) * sizeof(float);
  const auto t0 = std::chrono::steady_clock::now();
  if (world_.rank() == last_rank0) {
    world_.send(logits.data(), bytes, 0, kTagLogits);
    pass_.count_send(bytes, since(t0));
  } else if (world_.rank() == 0) {
    logits.resize(bytes / sizeof(float));
    world_.recv(logits.data(), bytes, last_rank0, kTagLogits);
    pass_.count_recv(bytes, since(t0));
  }
}

}  // namespace moe::parallel
