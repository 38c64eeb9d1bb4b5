#include "runtime/batch/batch_engine.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace moe {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "";
}

void weight_traffic(const ModelWeights& weights, BatchEngineOptions& o) {
  o.dense_bytes_per_step = weights.decode_bytes_per_token(0);
  int64_t moe_layers = 0;
  for (const LayerWeights& l : weights.layers) moe_layers += l.is_moe ? 1 : 0;
  o.bytes_per_expert =
      moe_layers > 0 ? (weights.decode_bytes_per_token(1) - o.dense_bytes_per_step) / static_cast<uint64_t>(moe_layers)
                     : 0;
}

BatchEngine::BatchEngine(Transformer& model, KvPool& pool, int64_t vocab_size, const Tokenizer* tokenizer,
                         const BatchEngineOptions& options)
    : model_(model),
      pool_(pool),
      vocab_(vocab_size),
      tokenizer_(tokenizer),
      options_(options),
      scheduler_(pool, options.limits) {
  MOE_CHECK(model.max_seqs() >= options.limits.max_seqs && model.max_step_tokens() >= options.limits.max_step_tokens,
            "batch engine: the forward pass has room for ", model.max_seqs(), " sequences and ",
            model.max_step_tokens(), " rows per step; the scheduler asks for ", options.limits.max_seqs, " and ",
            options.limits.max_step_tokens);
  running_.reserve(static_cast<size_t>(options.limits.max_seqs));
  chunks_.reserve(static_cast<size_t>(options.limits.max_seqs));
  stats_.kv_blocks_total = pool.num_blocks();
}

BatchEngine::~BatchEngine() {
  try {
    stop();
  } catch (...) {  // a destructor must not throw; stop() only fails on a callback's bug
  }
}

uint64_t BatchEngine::submit(RequestParams p, OutputCallback on_output) {
  MOE_CHECK(!p.prompt.empty(), "the prompt has no tokens");
  for (size_t i = 0; i < p.prompt.size(); ++i)
    MOE_CHECK(p.prompt[i] >= 0 && p.prompt[i] < vocab_, "prompt token ", p.prompt[i], " at index ", i,
              " is outside the vocabulary [0, ", vocab_, ")");
  MOE_CHECK(p.max_tokens >= 1, "max_tokens must be at least 1, got ", p.max_tokens);
  const int64_t prompt = static_cast<int64_t>(p.prompt.size());
  MOE_CHECK(prompt + p.max_tokens <= context(), "this model's context is ", context(), " tokens, but ", prompt,
            " prompt tokens + ", p.max_tokens, " max_tokens = ", prompt + p.max_tokens, " were requested");
  MOE_CHECK(pool_.blocks_for(prompt + p.max_tokens) <= pool_.num_blocks(), "the request needs ",
            pool_.blocks_for(prompt + p.max_tokens), " KV blocks of ", pool_.block_size(),
            " positions and the whole pool has ", pool_.num_blocks(), " (raise --kv-mem)");
  MOE_CHECK(p.stop.empty() || tokenizer_ != nullptr, "stop strings need the model's tokenizer.json");
  for (const std::string& s : p.stop) MOE_CHECK(!s.empty(), "stop strings must not be empty");
  for (const auto& [id, bias] : p.logit_bias)
    MOE_CHECK(id >= 0 && id < vocab_ && std::isfinite(bias), "logit_bias: token ", id, " (bias ", bias,
              ") is outside the vocabulary [0, ", vocab_, ") or not finite");
  MOE_CHECK(std::isfinite(p.presence_penalty) && std::isfinite(p.frequency_penalty), "penalties must be finite");
  p.sampling.validate();

  std::lock_guard lock(mutex_);
  MOE_CHECK(!stopping_, "the engine is shutting down");
  const uint64_t id = next_id_++;
  auto s = std::make_unique<Sequence>(id, std::move(p), std::move(on_output));
  if (tokenizer_) s->text.emplace(*tokenizer_, s->params.stop, s->params.skip_special_tokens);
  inbox_.push_back(std::move(s));
  ++stats_.requests_submitted;
  stats_.waiting = waiting_seen_ + static_cast<int64_t>(inbox_.size());
  wake_.notify_one();
  return id;
}

void BatchEngine::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  cancels_.push_back(id);
  wake_.notify_one();
}

void BatchEngine::drain_inbox() {
  std::vector<std::unique_ptr<Sequence>> arrived;
  std::vector<uint64_t> cancels;
  {
    std::lock_guard lock(mutex_);
    arrived.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& s : arrived) {
    waiting_.push_back(s.get());
    owned_.push_back(std::move(s));
  }
  for (const uint64_t id : cancels)
    for (auto& s : owned_)
      if (s->id == id && s->finished == FinishReason::kNone) finish(*s, FinishReason::kCancelled);
}

void BatchEngine::finish(Sequence& s, FinishReason why, const std::string& error) {
  out_.tokens.clear();
  out_.text.clear();
  out_.finish = why;
  out_.stop_string.clear();
  out_.error = error;
  out_.logits.clear();
  deliver(s);
}

void BatchEngine::deliver(Sequence& s) {
  out_.id = s.id;
  out_.prompt_tokens = s.prompt_len;
  out_.completion_tokens = s.generated();
  out_.time = std::chrono::steady_clock::now();
  s.finished = out_.finish;
  if (!s.on_output) return;
  try {
    s.on_output(out_);
  } catch (...) {  // a callback's failure must not take the engine down
  }
}

void BatchEngine::sample_and_emit(Sequence& s, float* row) {
  const RequestParams& p = s.params;
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f)
    for (const auto& [token, count] : s.counts)
      row[token] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(count);
  for (const auto& [token, bias] : p.logit_bias) row[token] += bias;
  if (p.keep_logits)
    out_.logits.assign(row, row + vocab_);
  else
    out_.logits.clear();
  const int32_t token = s.sampler.sample(std::span<const float>(row, static_cast<size_t>(vocab_)));
  s.tokens.push_back(token);
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) ++s.counts[token];

  out_.tokens.assign(1, token);
  out_.text.clear();
  out_.finish = FinishReason::kNone;
  out_.stop_string.clear();
  out_.error.clear();
  const bool stop_id = std::find(p.stop_ids.begin(), p.stop_ids.end(), token) != p.stop_ids.end();
  if (stop_id) {
    if (s.text) out_.text = s.text->finish();  // what was held back; the stop token itself is not text
    out_.finish = FinishReason::kStop;
  } else {
    if (s.text) out_.text = s.text->push(token);
    if (s.text && s.text->stopped()) {
      out_.finish = FinishReason::kStop;
      out_.stop_string = s.text->matched();
    } else if (s.generated() >= p.max_tokens) {
      if (s.text) out_.text += s.text->finish();
      out_.finish = FinishReason::kLength;
    }
  }
  deliver(s);
}

void BatchEngine::retire_finished() {
  auto done = [](const Sequence* s) { return s->finished != FinishReason::kNone; };
  running_.erase(std::remove_if(running_.begin(), running_.end(), done), running_.end());
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), done), waiting_.end());
  uint64_t finished[5] = {};
  for (auto it = owned_.begin(); it != owned_.end();) {
    if (done(it->get())) {
      scheduler_.release(**it);
      ++finished[static_cast<size_t>((*it)->finished)];
      it = owned_.erase(it);
    } else {
      ++it;
    }
  }
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < 5; ++i) stats_.requests_finished[i] += finished[i];
}

bool BatchEngine::step() {
  drain_inbox();
  retire_finished();
  scheduler_.plan(waiting_, running_, plan_);
  if (plan_.entries.empty()) {
    std::lock_guard lock(mutex_);
    update_stats_locked();
    return false;
  }

  chunks_.clear();
  uint64_t prompt_tokens = 0, prefill_rows = 0, decode_rows = 0;
  for (const Sequence* s : plan_.admitted)
    if (s->preemptions == 0 && s->cached == 0) prompt_tokens += static_cast<uint64_t>(s->prompt_len);
  for (const StepEntry& e : plan_.entries) {
    Sequence& s = *e.seq;
    const bool last = s.cached + e.tokens == static_cast<int64_t>(s.tokens.size());
    chunks_.push_back(SeqChunk{
        std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.cached), static_cast<size_t>(e.tokens)),
        s.cached, s.blocks, last});
    const bool decoding = e.tokens == 1 && last && s.generated() > 0 && s.cached >= s.prompt_len;
    (decoding ? decode_rows : prefill_rows) += static_cast<uint64_t>(e.tokens);
  }

  const uint64_t expert_calls_before = model_.counters().expert_calls;
  const auto t0 = std::chrono::steady_clock::now();
  std::string error;
  try {
    model_.step(chunks_, pool_.storage(), logits_);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto t1 = std::chrono::steady_clock::now();
  const uint64_t expert_calls = model_.counters().expert_calls - expert_calls_before;

  size_t row = 0;
  if (!error.empty()) {
    for (const StepEntry& e : plan_.entries) finish(*e.seq, FinishReason::kError, error);
  } else {
    for (size_t i = 0; i < plan_.entries.size(); ++i) {
      Sequence& s = *plan_.entries[i].seq;
      s.cached += plan_.entries[i].tokens;
      if (!chunks_[i].logits) continue;
      sample_and_emit(s, logits_.data() + row * static_cast<size_t>(vocab_));
      ++row;
    }
  }
  retire_finished();

  std::lock_guard lock(mutex_);
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += row;
  stats_.prefill_rows += prefill_rows;
  stats_.decode_rows += decode_rows;
  stats_.preemptions += plan_.preempted.size();
  ++stats_.steps;
  stats_.expert_calls += expert_calls;
  stats_.weight_bytes_read += options_.dense_bytes_per_step + expert_calls * options_.bytes_per_expert;
  stats_.busy_seconds += seconds_between(t0, t1);
  update_stats_locked();
  return true;
}

void BatchEngine::update_stats_locked() {
  stats_.running = static_cast<int64_t>(running_.size());
  waiting_seen_ = static_cast<int64_t>(waiting_.size());
  stats_.waiting = waiting_seen_ + static_cast<int64_t>(inbox_.size());
  stats_.kv_blocks_used = pool_.used_blocks();
  has_work_ = !running_.empty() || !waiting_.empty();
}

void BatchEngine::run_until_idle() {
  while (step()) {
  }
}

void BatchEngine::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || has_work_; });
      if (stopping_) return;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // A failure outside the forward pass (a bug): end what is running rather than spin on it.
      for (Sequence* s : running_) finish(*s, FinishReason::kError, e.what());
      retire_finished();
      std::lock_guard lock(mutex_);
      update_stats_locked();
    }
  }
}

void BatchEngine::start() {
  std::lock_guard lock(mutex_);
  MOE_CHECK(!thread_.joinable() && !stopping_, "batch engine: already started or stopped");
  thread_ = std::thread([this] { loop(); });
}

void BatchEngine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  drain_inbox();
  for (auto& s : owned_)
    if (s->finished == FinishReason::kNone) finish(*s, FinishReason::kCancelled);
  retire_finished();
  std::lock_guard lock(mutex_);
  update_stats_locked();
}

BatchEngineStats BatchEngine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace moe
