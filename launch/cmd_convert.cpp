// moe convert: Hugging Face checkpoint -> packed store (runtime/io/packed_store.h).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/config.h"
#include "runtime/quant/convert.h"

namespace moe::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
}

// SIGINT/SIGTERM set a flag that the progress callback turns into an exception, so the
// conversion unwinds and removes its partial directory. SA_RESETHAND: a second signal kills.
class StopSignals {
 public:
  StopSignals() {
    g_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct Interrupted : std::exception {
  const char* what() const noexcept override { return "interrupted"; }
};

std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  return buf;
}

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string rate_text(double bytes_per_s) {
  if (!std::isfinite(bytes_per_s)) return "  --.- MB/s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.1f MB/s", bytes_per_s / 1e6);
  return buf;
}

// Progress on stderr: redrawn in place on a terminal, one line per 10% otherwise.
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}

  void update(const ConvertProgress& p) {
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac =
        p.bytes_total == 0 ? 1.0 : static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total);
    // The rate counts from the first report, so that reading the checkpoint's headers does not
    // make it look slow; unknown until some time has passed.
    if (!first_) first_ = std::make_pair(now, p.bytes_done);
    const double since = std::chrono::duration<double>(now - first_->first).count();
    const double rate =
        since > 0.2 || (frac >= 1.0 && since > 0) ? static_cast<double>(p.bytes_done - first_->second) / since : NAN;
    const double eta = rate > 0 ? static_cast<double>(p.bytes_total - p.bytes_done) / rate : NAN;
    const int pct = static_cast<int>(std::floor(frac * 100.0));
    if (tty_) {
      if (elapsed - last_draw_ < 0.1 && frac < 1.0) return;
      last_draw_ = elapsed;
      constexpr int kWidth = 30;
      const int fill = std::clamp(static_cast<int>(frac * kWidth), 0, kWidth);
      std::string tensor = p.tensor;
      if (tensor.size() > 48) tensor = "..." + tensor.substr(tensor.size() - 45);
      std::fprintf(stderr, "\r[%s%s] %3d%%  %s  ETA %s  %s\x1b[K", std::string(fill, '#').c_str(),
                   std::string(kWidth - fill, '.').c_str(), pct, rate_text(rate).c_str(), clock_text(eta).c_str(),
                   tensor.c_str());
      drawn_ = true;
    } else {
      const int decile = static_cast<int>(std::floor(frac * 10.0));
      if (decile <= last_decile_) return;
      last_decile_ = decile;
      std::fprintf(
          stderr, "convert: %3d%%  %s of %s  %s  ETA %s\n", pct, human_bytes(static_cast<double>(p.bytes_done)).c_str(),
          human_bytes(static_cast<double>(p.bytes_total)).c_str(), rate_text(rate).c_str(), clock_text(eta).c_str());
    }
    std::fflush(stderr);
  }
  // Ends the in-place line.
  void finish() {
    if (tty_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool tty_;
  Clock::time_point start_;
  std::optional<std::pair<Clock::time_point, uint64_t>> first_;
  double last_draw_ = -1.0;
  int last_decile_ = -1;
  bool drawn_ = false;
};

struct KindSize {
  uint64_t bytes = 0;
  int64_t params = 0;
};

void print_summary(const fs::path& model, const fs::path& out, const ConvertStats& stats,
                   const std::string& quantizer) {
  const PackedStore store = PackedStore::open(out, /*verify=*/false);
  const ModelConfig config = load_model_config(out);
  std::map<std::string, KindSize> kinds;
  KindSize all;
  for (const std::string& name : store.tensor_names()) {
    const PackedTensor t = store.tensor(name);
    int64_t n = 1;
    for (const int64_t d : t.shape) n *= d;
    KindSize& k = kinds[std::string(tensor_kind_name(classify_tensor(name, *config.arch)))];
    k.bytes += t.bytes;
    k.params += n;
    all.bytes += t.bytes;
    all.params += n;
  }
  auto bpw = [](uint64_t bytes, int64_t params) {
    return params > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0;
  };
  const double src_bpw = bpw(stats.source_bytes, all.params);
  std::printf("converted %s -> %s in %.1f s\n", model.c_str(), out.c_str(), stats.seconds);
  std::printf("  recipe       %s (quantizer %s)\n", store.recipe().c_str(), quantizer.c_str());
  std::printf("  tensors      %lld, %lld experts\n", static_cast<long long>(stats.tensors),
              static_cast<long long>(stats.experts));
  std::printf(
      "  size         %s -> %s (%.1f%% of the source)\n", human_bytes(static_cast<double>(stats.source_bytes)).c_str(),
      human_bytes(static_cast<double>(stats.output_bytes)).c_str(),
      stats.source_bytes ? 100.0 * static_cast<double>(stats.output_bytes) / static_cast<double>(stats.source_bytes)
                         : 0.0);
  const auto ex = kinds.find("experts");
  if (ex != kinds.end())
    std::printf("  bits/weight  experts %.2f, overall %.2f (source %.2f)\n", bpw(ex->second.bytes, ex->second.params),
                bpw(all.bytes, all.params), src_bpw);
  else
    std::printf("  bits/weight  overall %.2f (source %.2f)\n", bpw(all.bytes, all.params), src_bpw);
  if (stats.relative_error.empty()) {
    std::printf("  rel. error   none (no tensor quantized)\n");
  } else {
    std::string line;
    for (const auto& [kind, err] : stats.relative_error) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%s %.4f", line.empty() ? "" : ", ", kind.c_str(), err);
      line += buf;
    }
    std::printf("  rel. error   %s (||w - deq(q(w))|| / ||w|| per kind)\n", line.c_str());
  }
}

}  // namespace

Action add_convert_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a Hugging Face checkpoint into moe's packed store: quantized or re-typed tensors in dense.bin,\n"
      "routed experts 4 KiB aligned in experts.bin (one read per expert), manifest.json with checksums, and\n"
      "the config and tokenizer files. Written under OUT.partial-<pid> and renamed when complete; Ctrl-C\n"
      "removes the partial output (exit code 130).");
  struct Options {
    std::string model;
    std::string quant;
    std::string out;
    std::string quantizer = "hqq";
    bool force = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option(
         "--model,-m", o->model,
         "Hugging Face model directory (config.json + *.safetensors) or a GGUF file (its block types are kept)")
      ->required()
      ->check(model_path_check());
  cmd->add_option("--quant,-q", o->quant,
                  "Recipe: a preset or kind=format pairs, e.g. attn=q4,experts=q2g16,router=f16.\n"
                  "Presets: q8, q4, q3, q2 (that format for every kind but the router), mixed-4-2 (attn q4g64,\n"
                  "experts q2g16, shared/dense q4g64), mixed-4-3 (attn q4g64, experts q3g64, shared/dense q4g64),\n"
                  "keep (copy every tensor). Kinds: attn, router, experts, shared, dense, embed, lm_head, all.\n"
                  "Formats: q8, q4, q3, q2 with optional gNN group size (16..256; default g64, g16 for q2), f16,\n"
                  "bf16, f32, keep. Kinds not named are kept; norms and biases are always kept.")
      ->required();
  cmd->add_option("--out,-o", o->out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--quantizer", o->quantizer,
                  "rtn (round to nearest) or hqq (error-minimising zero points; slower, more accurate)")
      ->check(CLI::IsMember({"rtn", "hqq"}))
      ->capture_default_str();
  cmd->add_flag("--force", o->force, "Replace an existing output directory, once the new one is complete");
  return [o] {
    const QuantRecipe recipe = QuantRecipe::parse(o->quant);
    QuantizeOptions qopt;
    qopt.quantizer = o->quantizer == "rtn" ? Quantizer::kRtn : Quantizer::kHqq;
    fs::path out(o->out);
    if (out.filename().empty()) out = out.parent_path();
    ProgressBar bar;
    StopSignals signals;
    ConvertStats stats;
    try {
      stats = convert_checkpoint(
          o->model, recipe, qopt, out,
          [&](const ConvertProgress& p) {
            if (g_signal.load() != 0) throw Interrupted();
            bar.update(p);
          },
          o->force);
    } catch (const Interrupted&) {
      bar.finish();
      std::fflush(stdout);
      std::fprintf(stderr, "moe: interrupted (%s); the partial output was removed, %s is unchanged\n",
                   g_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT", out.c_str());
      return 130;
    } catch (...) {
      bar.finish();
      throw;
    }
    bar.finish();
    print_summary(o->model, out, stats, o->quantizer);
    return 0;
  };
}

}  // namespace moe::cli
