#include "parallel/distributed_forward.h"

#include <chrono>
#include <climits>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int64_t kStop = 0, kForward = 1, kStep = 2;
constexpr size_t kChunkWords = 4;  // per chunk in a step's description: pos0, tokens, blocks, logits
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

void DistributedForward::step(std::span<const SeqChunk> chunks, KvStorage& kv, std::vector<float>& logits) {
  MOE_CHECK(world_.rank() == 0, "distributed forward: only rank 0 drives the model");
  MOE_CHECK(!finished_, "distributed forward: called after finish()");
  tokens_.clear();
  for (const SeqChunk& c : chunks) {
    MOE_CHECK(c.pos0 >= 0 && c.pos0 + static_cast<int64_t>(c.tokens.size()) <= INT32_MAX,
              "distributed step: chunk position ", c.pos0, " out of range");
    for (const int64_t v : {c.pos0, static_cast<int64_t>(c.tokens.size()), static_cast<int64_t>(c.blocks.size()),
                            static_cast<int64_t>(c.logits ? 1 : 0)})
      tokens_.push_back(static_cast<int32_t>(v));
  }
  for (const SeqChunk& c : chunks) tokens_.insert(tokens_.end(), c.tokens.begin(), c.tokens.end());
  for (const SeqChunk& c : chunks) tokens_.insert(tokens_.end(), c.blocks.begin(), c.blocks.end());
  Header h{kStep, static_cast<int64_t>(chunks.size()), static_cast<int64_t>(tokens_.size()), 0};
  // The batch engine recovers from a failed step by failing its requests, but the ranks would be
  // out of step after one: a failure here stops the job.
  try {
    world_.broadcast(&h, sizeof h, 0);
    world_.broadcast(tokens_.data(), tokens_.size() * sizeof(int32_t), 0);
    unpack_step(h.pos0);
    run_step(kv, logits);
  } catch (const std::exception& x) {
    world_.abort(1, str_cat("moe: error on rank 0 during a distributed step: ", x.what()));
  }
}

void DistributedForward::serve(KvCache* cache, KvStorage* kv) {
  MOE_CHECK(world_.rank() != 0, "distributed forward: rank 0 drives; serve() is for the other ranks");
  for (;;) {
    Header h;
    world_.broadcast(&h, sizeof h, 0);
    if (h.kind == kStop) return;
    MOE_CHECK((h.kind == kForward && cache) || (h.kind == kStep && kv), "distributed forward: rank ", world_.rank(),
              " received command ", h.kind, ", which this rank was not prepared for (", cache ? "moe run" : "moe serve",
              ")");
    MOE_CHECK(h.tokens > 0 && h.pos0 >= 0, "distributed forward: rank ", world_.rank(),
              " received a malformed command (kind ", h.kind, ", ", h.tokens, " words, ", h.pos0, ")");
    tokens_.resize(static_cast<size_t>(h.tokens));
    world_.broadcast(tokens_.data(), tokens_.size() * sizeof(int32_t), 0);
    if (h.kind == kForward) {
      run(h, tokens_, *cache, logits_);
    } else {
      unpack_step(h.pos0);
      run_step(*kv, logits_);
    }
  }
}

void DistributedForward::unpack_step(int64_t n_chunks) {
  const auto n = static_cast<size_t>(n_chunks);
  MOE_CHECK(tokens_.size() >= n * kChunkWords, "distributed step: rank ", world_.rank(), " received ", tokens_.size(),
            " words for ", n, " chunks");
  size_t token_at = n * kChunkWords, block_at = token_at;
  for (size_t i = 0; i < n; ++i) block_at += static_cast<size_t>(tokens_[i * kChunkWords + 1]);
  MOE_CHECK(block_at <= tokens_.size(), "distributed step: rank ", world_.rank(), " received a short step");
  chunks_.clear();
  for (size_t i = 0; i < n; ++i) {
    const int32_t* d = tokens_.data() + i * kChunkWords;
    const auto t = static_cast<size_t>(d[1]), b = static_cast<size_t>(d[2]);
    MOE_CHECK(block_at + b <= tokens_.size(), "distributed step: rank ", world_.rank(), " received a short step");
    SeqChunk c;
    c.pos0 = d[0];
    c.tokens = std::span<const int32_t>(tokens_.data() + token_at, t);
    c.blocks = std::span<const int32_t>(tokens_.data() + block_at, b);
    c.logits = d[3] != 0;
    chunks_.push_back(c);
    token_at += t;
    block_at += b;
  }
}

void DistributedForward::run_step(KvStorage& kv, std::vector<float>& logits) {
  pass_.run_step(chunks_, kv, logits);
  size_t rows = 0;
  for (const SeqChunk& c : chunks_) rows += c.logits ? 1 : 0;
  return_logits(rows, logits);
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
  return_logits(static_cast<size_t>(h.all_logits ? h.tokens : 1), logits);
}

void DistributedForward::return_logits(size_t rows, std::vector<float>& logits) {
  // The last stage's first rank hands the logits to rank 0 (the other ranks of that stage hold
  // the same logits after the LM head's gather).
  const int last_rank0 = (layout_.pp_size() - 1) * layout_.stage_size();
  if (last_rank0 == 0 || rows == 0) return;
  const size_t bytes = rows * static_cast<size_t>(vocab_) * sizeof(float);
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
