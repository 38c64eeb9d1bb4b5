// moe eval: how much a quantization recipe changes a model. For each recipe, the quantized
// model (converted into the cache) is run teacher-forced on the tokens the unquantized model
// generates greedily, and every step's next-token distributions are compared: KL(ref || quant),
// top-1 agreement. The weights' relative reconstruction error per tensor kind comes from
// dequantizing the packed store and comparing with the source checkpoint.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "kernels/quant/quantize.h"
#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/quant/quant_cache.h"

namespace moe::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::vector<std::string> recipes;
  std::string quantizer = "hqq";
  int64_t prompts = 4;
  int64_t prompt_tokens = 32;
  int64_t steps = 32;
  uint64_t seed = 0;
  int threads = 0;
  std::string out;
};

// log-softmax in double.
std::vector<double> log_probs(const float* logits, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - m);
  const double lse = m + std::log(sum);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - lse;
  return out;
}

double kl_divergence(const float* ref, const float* q, int64_t n) {
  const std::vector<double> lp = log_probs(ref, n), lq = log_probs(q, n);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);
}

int64_t argmax(const float* x, int64_t n) {
  return std::max_element(x, x + n) - x;
}

struct Sequence {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;  // the reference's greedy tokens
  std::vector<float> logits;       // reference logits, (generated, vocab)
};

// Greedy generation with the reference model, keeping every step's logits.
std::vector<Sequence> reference_sequences(Engine& ref, const EvalOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(ref.config().vocab_size - 1));
  std::vector<Sequence> seqs(static_cast<size_t>(o.prompts));
  for (Sequence& s : seqs) {
    for (int64_t i = 0; i < o.prompt_tokens; ++i) s.prompt.push_back(token(rng));
    GenerationOptions g;
    g.max_new_tokens = o.steps;
    g.keep_logits = true;
    const GenerationResult r = generate(*ref.transformer, *ref.cache, ref.config().vocab_size, s.prompt, g);
    s.generated = r.tokens;
    s.logits = r.logits;
  }
  return seqs;
}

struct Agreement {
  double kl_sum = 0, kl_max = 0;
  int64_t steps = 0, top1_same = 0;
};

// The quantized model fed the reference's tokens; compares the distribution at every step.
Agreement compare(Engine& q, const std::vector<Sequence>& seqs) {
  Agreement a;
  const int64_t vocab = q.config().vocab_size;
  std::vector<float> logits;
  for (const Sequence& s : seqs) {
    q.cache->clear();
    q.transformer->forward(s.prompt, *q.cache, false, logits);
    for (size_t step = 0; step < s.generated.size(); ++step) {
      const float* ref = s.logits.data() + step * static_cast<size_t>(vocab);
      const double kl = kl_divergence(ref, logits.data(), vocab);
      a.kl_sum += kl;
      a.kl_max = std::max(a.kl_max, kl);
      a.top1_same += argmax(ref, vocab) == argmax(logits.data(), vocab);
      ++a.steps;
      if (step + 1 < s.generated.size()) {
        const int32_t one[1] = {s.generated[step]};
        q.transformer->forward(one, *q.cache, false, logits);
      }
    }
  }
  return a;
}

// Relative L2 reconstruction error per tensor kind: dequantized store vs source checkpoint.
std::map<std::string, double> weight_errors(const Engine& ref, const Engine& q) {
  std::map<std::string, std::pair<double, double>> acc;  // kind -> (err^2, norm^2)
  const PackedStore* store = q.model->packed();
  if (!store) return {};
  const WeightSource& src = ref.model->source();
  for (const std::string& name : store->tensor_names()) {
    const PackedTensor t = store->tensor(name);
    if (!t.quant || !src.contains(name)) continue;  // fused sources are renamed: skipped
    const TensorView v = src.tensor(name);
    const int64_t k = t.shape.back(), rows = v.numel() / k;
    std::vector<float> deq(static_cast<size_t>(v.numel()));
    dequantize_rows(t.data, rows, k, *t.quant, deq.data());
    auto& [err, norm] = acc[std::string(tensor_kind_name(classify_tensor(name, *ref.config().arch)))];
    for (int64_t i = 0; i < v.numel(); ++i) {
      const double w = load_as_f32(v.data, v.dtype, i);
      err += (w - deq[static_cast<size_t>(i)]) * (w - deq[static_cast<size_t>(i)]);
      norm += w * w;
    }
  }
  std::map<std::string, double> out;
  for (const auto& [kind, en] : acc) out[kind] = std::sqrt(en.first / std::max(en.second, 1e-30));
  return out;
}

int eval(const EvalOptions& o) {
  MOE_CHECK(!o.recipes.empty(), "moe eval: give at least one --quant RECIPE");
  MOE_CHECK(o.prompts > 0 && o.prompt_tokens > 0 && o.steps > 0, "moe eval: --prompts, --prompt-tokens, --steps > 0");
  EngineOptions base;
  base.model_dir = o.model;
  base.threads = o.threads;
  std::unique_ptr<Engine> ref = load_engine(base);
  ref->prepare(o.prompt_tokens + o.steps);
  std::fprintf(stderr, "reference: %s (%.1f MB), %lld prompts x %lld tokens, %lld greedy steps each\n",
               ref->config().summary().c_str(), static_cast<double>(ref->model->weights().bytes) / 1e6,
               static_cast<long long>(o.prompts), static_cast<long long>(o.prompt_tokens),
               static_cast<long long>(o.steps));
  const std::vector<Sequence> seqs = reference_sequences(*ref, o);

  nlohmann::ordered_json report = {{"model", o.model},
                                   {"reference_weights_mb", static_cast<double>(ref->model->weights().bytes) / 1e6},
                                   {"quantizer", o.quantizer},
                                   {"prompts", o.prompts},
                                   {"prompt_tokens", o.prompt_tokens},
                                   {"steps", o.steps},
                                   {"seed", o.seed},
                                   {"recipes", nlohmann::ordered_json::array()}};
  std::printf("%-34s %9s %9s %10s %10s %7s  %s\n", "recipe", "MB", "experts", "KL mean", "KL max", "top-1",
              "weight error (relative L2) per kind");
  for (const std::string& spec : o.recipes) {
    EngineOptions qo = base;
    qo.quant = spec;
    qo.quantizer = o.quantizer;
    std::unique_ptr<Engine> q = load_engine(qo);
    q->prepare(o.prompt_tokens + o.steps);
    const Agreement a = compare(*q, seqs);
    const std::map<std::string, double> errors = weight_errors(*ref, *q);
    const ModelWeights& w = q->model->weights();
    std::string err_text;
    for (const auto& [kind, e] : errors) err_text += str_cat(kind, " ", e, "  ");
    const double kl_mean = a.kl_sum / static_cast<double>(a.steps);
    const double top1 = static_cast<double>(a.top1_same) / static_cast<double>(a.steps);
    std::printf("%-34s %9.1f %9.1f %10.5f %10.5f %6.1f%%  %s\n", q->model->packed()->recipe().c_str(),
                static_cast<double>(w.bytes) / 1e6, static_cast<double>(w.expert_bytes) / 1e6, kl_mean, a.kl_max,
                100 * top1, err_text.c_str());
    report["recipes"].push_back({{"recipe", q->model->packed()->recipe()},
                                 {"weights_mb", static_cast<double>(w.bytes) / 1e6},
                                 {"expert_mb", static_cast<double>(w.expert_bytes) / 1e6},
                                 {"kl_mean", kl_mean},
                                 {"kl_max", a.kl_max},
                                 {"top1_agreement", top1},
                                 {"steps", a.steps},
                                 {"relative_weight_error", errors}});
  }
  if (!o.out.empty()) {
    std::ofstream(o.out) << report.dump(2) << "\n";
    std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  }
  return 0;
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Measure what quantization does to a model: the unquantized model generates greedily from random\n"
      "prompts, each recipe's quantized model is fed the same tokens, and the next-token distributions are\n"
      "compared at every step (KL divergence, top-1 agreement), beside the weights' reconstruction error.\n"
      "On random-weight models this measures numerical fidelity only, not task accuracy (docs/quantization.md).");
  auto o = std::make_shared<EvalOptions>();
  cmd->add_option("--model,-m", o->model, "Hugging Face model directory (the unquantized reference)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--quant,-q", o->recipes, "Recipe(s) to evaluate (repeat the option), e.g. q8 q4 mixed-4-2")
      ->required();
  cmd->add_option("--quantizer", o->quantizer, "hqq or rtn")->capture_default_str();
  cmd->add_option("--prompts", o->prompts, "Number of random prompts")->capture_default_str();
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "Tokens per prompt")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Greedy steps compared per prompt")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_option("--threads,-t", o->threads, "CPU threads");
  cmd->add_option("--out,-o", o->out, "Write the report as JSON to this file");
  return [o] { return eval(*o); };
}

}  // namespace moe::cli
