#include "parallel/cluster_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>

#include "parallel/layer_planner.h"
#include "runtime/offload/budget.h"

namespace moe::parallel {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double as_double(uint64_t b) {
  return static_cast<double>(b);
}

uint64_t to_bytes(int64_t params, double bytes_per_param) {
  return static_cast<uint64_t>(std::llround(static_cast<double>(params) * bytes_per_param));
}

struct Degrees {
  int tp = 1, pp = 1, ep = 1;
};

std::string degree(int v) {
  return v ? std::to_string(v) : std::string("auto");
}

Degrees choose_degrees(const ModelConfig& c, int world, const PlanRequest& r) {
  MOE_CHECK(r.tp >= 0 && r.pp >= 0 && r.ep >= 0, "plan: negative parallel degree (tp ", r.tp, ", pp ", r.pp, ", ep ",
            r.ep, ")");
  if (r.tp == 0 && r.pp == 0 && r.ep == 0) {
    MOE_CHECK(c.num_layers >= world, "plan: ", world, " workers cannot each run a pipeline stage of a model with ",
              c.num_layers, " layers; give tp or ep");
    return Degrees{1, world, 1};
  }
  const int given = std::max(r.tp, 1) * std::max(r.pp, 1) * std::max(r.ep, 1);
  const bool filled = r.tp == 0 || r.pp == 0 || r.ep == 0;
  MOE_CHECK(filled ? world % given == 0 : world == given, "plan: tp ", degree(r.tp), " x pp ", degree(r.pp), " x ep ",
            degree(r.ep), " cannot make ", world, " ranks, one per registered worker");
  Degrees d{r.tp, r.pp, r.ep};
  int& missing = r.pp == 0 ? d.pp : r.tp == 0 ? d.tp : d.ep;
  if (filled) missing = world / given;
  for (int* v : {&d.tp, &d.pp, &d.ep})
    if (*v == 0) *v = 1;
  return d;
}

void check_degrees(const ModelConfig& c, const Degrees& d) {
  const int64_t tp = d.tp;
  MOE_CHECK(c.num_heads % tp == 0, "plan: tp ", tp, " does not divide the model's ", c.num_heads, " attention heads");
  MOE_CHECK(c.num_kv_heads % tp == 0 || tp % c.num_kv_heads == 0, "plan: tp ", tp, " and the model's ", c.num_kv_heads,
            " KV heads: one must divide the other");
  if (c.num_experts > 0)
    MOE_CHECK(c.expert_intermediate % tp == 0, "plan: tp ", tp, " does not divide the routed experts' width ",
              c.expert_intermediate);
  if (c.dense_intermediate > 0 && c.has_dense_layers())
    MOE_CHECK(c.dense_intermediate % tp == 0, "plan: tp ", tp, " does not divide the dense MLP width ",
              c.dense_intermediate);
  if (c.shared_intermediate > 0)
    MOE_CHECK(c.shared_intermediate % tp == 0, "plan: tp ", tp, " does not divide the shared expert width ",
              c.shared_intermediate);
  MOE_CHECK(d.ep == 1 || c.num_experts >= d.ep, "plan: ep ", d.ep, " needs at least ", d.ep,
            " routed experts per layer; the model has ", c.num_experts);
  MOE_CHECK(c.num_layers >= d.pp, "plan: pp ", d.pp, " stages need at least as many layers; the model has ",
            c.num_layers);
}

// One member's part of a stage, in bytes.
struct Share {
  double dense = 0;          // held besides routed experts (attention, MLPs, embedding, head)
  double experts = 0;        // its routed experts
  double token_dense = 0;    // read per token besides routed experts
  double token_experts = 0;  // routed experts read per token
  double min_budget = 0;     // one token's routed experts: the least an offloading member holds
};

// Whether a member fits its share, and its time per token.
struct Fit {
  double have = 0;  // ram_bytes - ram_reserve
  double need = 0;  // the least it must hold (with the smallest expert budget when it can offload)
  bool can_offload = false;
  bool offload = false;
  double budget = 0;  // when offloading: RAM for its routed experts
  double seconds = kInf;
  bool fits() const { return need <= have; }
};

Fit fit(const Share& s, const WorkerInfo& w, uint64_t reserve) {
  Fit f;
  f.have = w.ram_bytes > reserve ? as_double(w.ram_bytes - reserve) : 0;
  f.can_offload = w.drive_bandwidth > 0 && s.experts > 0;
  f.need = s.dense + (f.can_offload ? std::min(s.experts, s.min_budget) : s.experts);
  if (!f.fits()) return f;
  f.seconds = (s.token_dense + s.token_experts) / worker_speed(w);
  if (s.dense + s.experts > f.have) {
    f.offload = true;
    f.budget = std::floor(f.have - s.dense);
    f.seconds += (1 - f.budget / s.experts) * s.token_experts / w.drive_bandwidth;
  }
  return f;
}

// The model's bytes as prefix sums over layers, and each stage's members: a stage's share in O(1).
class Stages {
 public:
  Stages(const ModelBytes& m, const ModelConfig& c, const Degrees& d, std::span<const WorkerInfo> workers)
      : m_(m), c_(c), d_(d), workers_(workers), n_(c.num_layers) {
    auto push = [](std::vector<double>& v, double x) { v.push_back(v.back() + x); };
    for (int64_t i = 0; i < n_; ++i) {
      const auto k = static_cast<size_t>(i);
      const uint64_t token_dense = std::min(m.layer_token[k], m.layer_dense[k]);
      push(dense_, as_double(m.layer_dense[k]));
      push(experts_, as_double(m.layer_experts[k]));
      push(token_dense_, as_double(token_dense));
      push(token_experts_, as_double(m.layer_token[k] - token_dense));
      moe_layers_.push_back(moe_layers_.back() + (m.layer_experts[k] > 0 ? 1 : 0));
    }
    order_.resize(workers.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) {
      return worker_speed(workers[static_cast<size_t>(a)]) > worker_speed(workers[static_cast<size_t>(b)]);
    });
    head_split_ = !c.tie_word_embeddings && c.vocab_size % d.tp == 0 ? d.tp : 1;
  }

  int64_t layers() const { return n_; }
  int size() const { return d_.tp * d_.ep; }
  // The worker index of member j of stage s.
  int member(int s, int j) const { return order_[static_cast<size_t>(s * size() + j)]; }
  const WorkerInfo& worker(int s, int j) const { return workers_[static_cast<size_t>(member(s, j))]; }

  // A member's share of a stage running layers [i, j).
  Share share(int64_t i, int64_t j) const {
    const auto a = static_cast<size_t>(i), b = static_cast<size_t>(j);
    const double tp = d_.tp, tp_ep = d_.tp * d_.ep;
    Share s;
    s.dense = (dense_[b] - dense_[a]) / tp;
    s.experts = (experts_[b] - experts_[a]) / tp_ep;
    s.token_dense = (token_dense_[b] - token_dense_[a]) / tp;
    s.token_experts = (token_experts_[b] - token_experts_[a]) / tp_ep;
    const int64_t slots = (m_.top_k * (moe_layers_[b] - moe_layers_[a]) + d_.ep - 1) / d_.ep;
    s.min_budget = static_cast<double>(slots) * as_double(m_.expert_bytes) / tp;
    const bool first = i == 0, last = j == n_;
    double extra = 0;
    if (first) {
      extra = as_double(m_.first_extra);
      s.token_dense += as_double(m_.first_extra) / static_cast<double>(std::max<int64_t>(c_.vocab_size, 1));
    }
    if (last) {
      const double head = as_double(m_.last_extra) / head_split_;
      extra = first && c_.tie_word_embeddings ? std::max(extra, head) : extra + head;
      s.token_dense += as_double(m_.last_token) / head_split_;
    }
    s.dense += extra;
    return s;
  }

  // Stage s running [i, j): its slowest member's seconds per token, kInf when a member does not fit.
  double seconds(int s, int64_t i, int64_t j, uint64_t reserve) const {
    const Share sh = share(i, j);
    double worst = 0;
    for (int k = 0; k < size(); ++k) {
      const Fit f = fit(sh, worker(s, k), reserve);
      if (!f.fits()) return kInf;
      worst = std::max(worst, f.seconds);
    }
    return worst;
  }

  // How far stage s running [i, j) misses its members' RAM (bytes; <= 0 when it fits), and who.
  double overflow(int s, int64_t i, int64_t j, uint64_t reserve, int* who = nullptr) const {
    const Share sh = share(i, j);
    double worst = -kInf;
    for (int k = 0; k < size(); ++k) {
      const Fit f = fit(sh, worker(s, k), reserve);
      if (f.need - f.have > worst) {
        worst = f.need - f.have;
        if (who) *who = k;
      }
    }
    return worst;
  }

 private:
  const ModelBytes& m_;
  const ModelConfig& c_;
  Degrees d_;
  std::span<const WorkerInfo> workers_;
  int64_t n_;
  std::vector<double> dense_{0}, experts_{0}, token_dense_{0}, token_experts_{0};
  std::vector<int64_t> moe_layers_{0};
  std::vector<int> order_;
  int head_split_ = 1;
};

// `stages` contiguous non-empty ranges of [0, n) minimising the largest cost(s, begin, end)
// (ties: the earliest split). Empty when every split costs kInf.
std::vector<LayerRange> min_max_split(int64_t n, int stages, const std::function<double(int, int64_t, int64_t)>& cost) {
  const auto S = static_cast<size_t>(stages), N = static_cast<size_t>(n);
  std::vector<std::vector<double>> best(S + 1, std::vector<double>(N + 1, kInf));
  std::vector<std::vector<int64_t>> cut(S + 1, std::vector<int64_t>(N + 1, 0));
  best[0][0] = -kInf;
  for (size_t s = 1; s <= S; ++s)
    for (auto j = static_cast<int64_t>(s); j <= n; ++j)
      for (auto i = static_cast<int64_t>(s) - 1; i < j; ++i) {
        const double prev = best[s - 1][static_cast<size_t>(i)];
        if (prev == kInf) continue;
        const double v = std::max(prev, cost(static_cast<int>(s) - 1, i, j));
        if (v < best[s][static_cast<size_t>(j)]) {
          best[s][static_cast<size_t>(j)] = v;
          cut[s][static_cast<size_t>(j)] = i;
        }
      }
  if (best[S][N] == kInf) return {};
  std::vector<LayerRange> out(S);
  int64_t end = n;
  for (size_t s = S; s >= 1; --s) {
    out[s - 1] = LayerRange{cut[s][static_cast<size_t>(end)], end};
    end = out[s - 1].begin;
  }
  return out;
}

// "16.00 GiB, 16.00 GiB and 8.00 GiB"
std::string ram_list(std::span<const WorkerInfo> workers) {
  std::string s;
  for (size_t k = 0; k < workers.size(); ++k)
    s += str_cat(k == 0 ? "" : k + 1 == workers.size() ? " and " : ", ", format_bytes(workers[k].ram_bytes));
  return s;
}

std::string explain(const ModelBytes& m, const ModelConfig& c, const Degrees& d, std::span<const WorkerInfo> workers,
                    const Stages& st, uint64_t reserve) {
  const std::vector<LayerRange> closest =
      min_max_split(st.layers(), d.pp, [&](int s, int64_t i, int64_t j) { return st.overflow(s, i, j, reserve); });
  int stage = 0, who = 0;
  double worst = -kInf;
  for (int s = 0; s < d.pp; ++s) {
    int k = 0;
    const double o =
        st.overflow(s, closest[static_cast<size_t>(s)].begin, closest[static_cast<size_t>(s)].end, reserve, &k);
    if (o > worst) worst = o, stage = s, who = k;
  }
  const LayerRange& r = closest[static_cast<size_t>(stage)];
  const WorkerInfo& w = st.worker(stage, who);
  const Share sh = st.share(r.begin, r.end);
  const Fit f = fit(sh, w, reserve);
  auto b = [](double x) { return format_bytes(static_cast<uint64_t>(std::ceil(x))); };
  std::string detail = b(sh.dense) + " of dense weights";
  if (f.can_offload)
    detail += str_cat(" + ", b(std::min(sh.experts, sh.min_budget)),
                      " for one token's routed experts, the rest read from the drive");
  else if (sh.experts > 0)
    detail += str_cat(" + ", b(sh.experts), " of routed experts (no drive bandwidth measured to offload them)");
  const uint64_t dense = std::accumulate(m.layer_dense.begin(), m.layer_dense.end(), uint64_t{0});
  const uint64_t experts = std::accumulate(m.layer_experts.begin(), m.layer_experts.end(), uint64_t{0});
  const uint64_t ends =
      c.tie_word_embeddings && d.pp == 1 ? std::max(m.first_extra, m.last_extra) : m.first_extra + m.last_extra;
  return str_cat("plan: cannot place the model on ", workers.size(), " worker", workers.size() == 1 ? "" : "s", " (tp ",
                 d.tp, " x pp ", d.pp, " x ep ", d.ep, "): it needs ", format_bytes(dense), " of dense weights + ",
                 format_bytes(experts), " of routed experts + ", format_bytes(ends),
                 " of embedding and LM head; the workers have ", ram_list(workers), " of RAM (", format_bytes(reserve),
                 " kept free each). Closest split ", format_layer_ranges(closest), ": stage ", stage, " (layers ",
                 r.begin, ":", r.end, ") needs at least ", b(f.need), " on worker ", w.id, " (host ", w.host,
                 "), which has ", b(f.have), ": ", detail);
}

}  // namespace

ModelBytes model_bytes(const ModelConfig& c, double bytes_per_param) {
  MOE_CHECK(std::isfinite(bytes_per_param) && bytes_per_param > 0, "model_bytes: ", bytes_per_param,
            " bytes per parameter");
  MOE_CHECK(static_cast<int64_t>(c.layer_is_moe.size()) == c.num_layers, "model_bytes: layer_is_moe has ",
            c.layer_is_moe.size(), " entries for ", c.num_layers, " layers");
  const LayerParams all = layer_params(c), token = layer_params(c, true);
  // The same count with zero-width routed experts: what each layer holds besides them.
  ModelConfig without_experts = c;
  without_experts.expert_intermediate = 0;
  const LayerParams dense = layer_params(without_experts);
  ModelBytes m;
  m.top_k = c.experts_per_token;
  for (size_t i = 0; i < all.layers.size(); ++i) {
    const int64_t routed = all.layers[i] - dense.layers[i];
    if (routed > 0 && m.expert_bytes == 0) m.expert_bytes = to_bytes(routed / c.num_experts, bytes_per_param);
    m.layer_dense.push_back(to_bytes(dense.layers[i], bytes_per_param));
    m.layer_experts.push_back(to_bytes(routed, bytes_per_param));
    m.layer_token.push_back(to_bytes(token.layers[i], bytes_per_param));
  }
  m.first_extra = to_bytes(all.first_extra, bytes_per_param);
  m.last_extra = to_bytes(token.last_extra, bytes_per_param);  // the head, tied or not
  m.last_token = m.last_extra;
  return m;
}

double worker_speed(const WorkerInfo& w) {
  if (w.compute_bytes_per_s > 0) return w.compute_bytes_per_s;
  if (w.memory_bandwidth > 0) return w.memory_bandwidth;
  return 1.0;
}

ClusterPlan plan_cluster(const ModelBytes& m, const ModelConfig& c, std::span<const WorkerInfo> workers,
                         const PlanRequest& r) {
  const int world = static_cast<int>(workers.size());
  MOE_CHECK(world >= 1, "plan: no workers registered");
  const auto L = static_cast<size_t>(c.num_layers);
  MOE_CHECK(m.layer_dense.size() == L && m.layer_experts.size() == L && m.layer_token.size() == L,
            "plan: the model bytes have ", m.layer_dense.size(), "/", m.layer_experts.size(), "/", m.layer_token.size(),
            " layers (dense/experts/token) for a model of ", L);
  const Degrees d = choose_degrees(c, world, r);
  check_degrees(c, d);
  const Stages st(m, c, d, workers);
  const uint64_t reserve = r.ram_reserve;

  ClusterPlan plan;
  plan.tp = d.tp, plan.pp = d.pp, plan.ep = d.ep;
  plan.stages =
      min_max_split(st.layers(), d.pp, [&](int s, int64_t i, int64_t j) { return st.seconds(s, i, j, reserve); });
  if (plan.stages.empty()) throw InfeasiblePlan(explain(m, c, d, workers, st, reserve));

  double total = 0;
  for (int s = 0; s < d.pp; ++s) {
    const LayerRange range = plan.stages[static_cast<size_t>(s)];
    const Share sh = st.share(range.begin, range.end);
    double stage_seconds = 0;
    for (int k = 0; k < st.size(); ++k) {
      const Fit f = fit(sh, st.worker(s, k), reserve);
      WorkerAssignment a;
      a.worker = st.member(s, k);
      a.pp_rank = s, a.ep_rank = k / d.tp, a.tp_rank = k % d.tp;
      a.world_rank = a.pp_rank * (d.ep * d.tp) + a.ep_rank * d.tp + a.tp_rank;
      a.layers = range;
      a.offload = f.offload;
      a.expert_ram_budget = f.offload ? static_cast<uint64_t>(f.budget) : 0;
      a.resident_bytes = static_cast<uint64_t>(std::llround(sh.dense + (f.offload ? f.budget : sh.experts)));
      a.seconds_per_token = f.seconds;
      stage_seconds = std::max(stage_seconds, f.seconds);
      plan.assignments.push_back(a);
    }
    total += stage_seconds;
  }
  plan.predicted_tokens_per_s = total > 0 ? 1 / total : 0;
  std::sort(plan.assignments.begin(), plan.assignments.end(),
            [](const WorkerAssignment& a, const WorkerAssignment& b) { return a.world_rank < b.world_rank; });
  return plan;
}

std::string ClusterPlan::layers_spec() const {
  return format_layer_ranges(stages);
}

std::string ClusterPlan::describe(std::span<const WorkerInfo> workers) const {
  std::vector<std::vector<std::string>> rows = {
      {"rank", "worker", "host", "stage", "layers", "tp", "ep", "resident", "experts in RAM", "ms/token"}};
  for (const WorkerAssignment& a : assignments) {
    MOE_CHECK(a.worker >= 0 && static_cast<size_t>(a.worker) < workers.size(), "describe: worker ", a.worker, " of ",
              workers.size());
    const WorkerInfo& w = workers[static_cast<size_t>(a.worker)];
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", a.seconds_per_token * 1e3);
    rows.push_back({std::to_string(a.world_rank), w.id, w.host, std::to_string(a.pp_rank),
                    str_cat(a.layers.begin, ":", a.layers.end), std::to_string(a.tp_rank), std::to_string(a.ep_rank),
                    format_bytes(a.resident_bytes), a.offload ? format_bytes(a.expert_ram_budget) : "all", ms});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t k = 0; k < row.size(); ++k) width[k] = std::max(width[k], row[k].size());
  char tokens[32];
  std::snprintf(tokens, sizeof tokens, "%.2f", predicted_tokens_per_s);
  std::string out =
      str_cat("tp ", tp, " x pp ", pp, " x ep ", ep, ", layers ", layers_spec(), ", ", tokens, " tokens/s\n");
  for (const auto& row : rows) {
    std::string line;
    for (size_t k = 0; k < row.size(); ++k) line += row[k] + std::string(width[k] - row[k].size() + 2, ' ');
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

}  // namespace moe::parallel
