#include "parallel/stage_pass.h"

#include <algorithm>
#include <chrono>

#include "parallel/comm_collectives.h"

namespace moe::parallel {
namespace {

constexpr int kTagHidden = 11;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

StagePass::StagePass(Transformer& t, const ParallelLayout& layout, Communicator& data, Backend& backend,
                     int64_t vocab_size)
    : t_(t), layout_(layout), data_(data), backend_(backend), vocab_(vocab_size) {}

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
      const auto t0 = std::chrono::steady_clock::now();
      recv_rows(data_, backend_, t_.hidden(), k, rank - stage, kTagHidden, staging_);
      count_recv(bytes, since(t0));
    }
    t_.run_layers(k, cache);
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

}  // namespace moe::parallel
