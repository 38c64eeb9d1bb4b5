// moe_bench_qgemv: decode GEMV (T = 1) over quantized weights (cpu::qlinear) at large shapes,
// with bf16 cpu::linear for reference, as achieved GB/s of weight bytes read and as a fraction of
// this machine's read bandwidth measured in the same run (a vectorised sum over a 1 GiB buffer
// with the same threads). Prints a table and writes one JSON record (--out).
//
// Each case cycles through enough copies of its weights that their total exceeds the last-level
// cache several times over, so every call reads its weights from memory; the statistic is the
// median of the timed calls.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "benchmarks/bench_record.h"
#include "kernels/common/dtype.h"
#include "kernels/common/thread_pool.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/qlinear.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/cpu/qtile.h"
#include "kernels/quant/quant_format.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sum of n floats in 16 lane-wise partial sums (vectorised by the compiler); each thread sums its
// static share, as the GEMV rows are shared.
__attribute__((target_clones("default", "arch=x86-64-v3"))) float sum_lanes(const float* p, int64_t n) {
  float acc[16] = {};
  for (int64_t i = 0; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  float s = 0.0f;
  for (const float a : acc) s += a;
  return s;
}

// Read bandwidth in GB/s (1e9 bytes) over `bytes`, median of `reps` passes.
double read_bandwidth(size_t bytes, int reps, std::vector<double>& all) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  std::vector<float> buf(static_cast<size_t>(n));
  constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n / kChunk; ++c) std::fill_n(buf.data() + c * kChunk, kChunk, 1.0f);  // first touch
  volatile float sink = 0.0f;
  for (int r = 0; r < reps; ++r) {
    float total = 0.0f;
    const auto t0 = Clock::now();
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int64_t c = 0; c < n / kChunk; ++c) total += sum_lanes(buf.data() + c * kChunk, kChunk);
    all.push_back(static_cast<double>(bytes) / seconds_since(t0) / 1e9);
    sink = sink + total;
  }
  return moe::bench::median(all);
}

// Byte offsets of the f16 scale fields of a ggml block (random bytes there could be NaN/Inf).
std::vector<size_t> ggml_f16_offsets(moe::QuantType t) {
  switch (t) {
    case moe::QuantType::kQ8:
    case moe::QuantType::kQ4:
    case moe::QuantType::kQ3:
    case moe::QuantType::kQ2: return {0, 2};
    case moe::QuantType::kGgmlQ4_0:
    case moe::QuantType::kGgmlQ5_0:
    case moe::QuantType::kGgmlQ8_0:
    case moe::QuantType::kGgmlIQ4_XS: return {0};
    case moe::QuantType::kGgmlQ4_1:
    case moe::QuantType::kGgmlQ5_1:
    case moe::QuantType::kGgmlQ4_K:
    case moe::QuantType::kGgmlQ5_K: return {0, 2};
    case moe::QuantType::kGgmlQ2_K: return {80, 82};
    case moe::QuantType::kGgmlQ3_K: return {108};
    case moe::QuantType::kGgmlQ6_K: return {208};
  }
  return {};
}

// N rows of K weights in format f with random codes and valid scales and zeros (ggml types:
// random bytes with finite f16 scale fields).
std::vector<uint8_t> make_weights(std::mt19937& rng, moe::QuantFormat f, int64_t N, int64_t K) {
  std::vector<uint8_t> w(static_cast<size_t>(N) * moe::quant_row_bytes(f, K));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  const uint16_t s = moe::f32_to_f16(0.01f), z = moe::f32_to_f16(1.5f);
  const std::vector<size_t> offs = ggml_f16_offsets(f.type);
  for (size_t o = 0; o < w.size(); o += moe::quant_block_bytes(f)) {
    if (moe::is_ggml(f.type)) {
      for (const size_t off : offs) std::memcpy(w.data() + o + off, &s, 2);
    } else {
      std::memcpy(w.data() + o, &s, 2);
      std::memcpy(w.data() + o + 2, &z, 2);
    }
  }
  return w;
}

struct Case {
  std::string name;  // "q4g64", "q4g64/t16" (kTile16 layout) or "bf16"
  moe::QuantFormat f;
  bool bf16 = false;
  moe::QuantLayout layout = moe::QuantLayout::kRows;
};

std::string case_name(moe::QuantFormat f) {
  return moe::quant_format_name(f);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Quantized GEMV (decode) bandwidth: cpu::qlinear at T = 1 vs the machine's read bandwidth"};
  int threads = omp_get_max_threads();
  int reps = 25;
  std::string out = std::string(MOE_SOURCE_DIR) + "/benchmarks/results/cpu-qgemv.json";
  double cache_bytes = 256e6;
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed calls per case (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--out", out, "JSON record to write");
  app.add_option("--working-set", cache_bytes, "bytes of weight copies cycled per case (>> last-level cache)");
  std::vector<std::string> shape_args;
  app.add_option("--shape", shape_args,
                 "NxK weight shapes to run (repeatable; default 14336x4096 and 4096x14336, Mixtral-8x7B's expert "
                 "projections; 3584x1024 and 1024x3584 are the benchmark model's)");
  std::vector<int64_t> token_counts = {1};
  app.add_option("--tokens", token_counts,
                 "token rows per call (repeatable or comma-separated; default 1: decode). T > 1 is a batched step: "
                 "the weights are read once for T rows")
      ->delimiter(',');
  std::vector<std::string> format_args;
  app.add_option(
      "--format", format_args,
      "formats to run (repeatable; default q8g64 q8g64/t16 q4g64 q4g64/t16 q4g128 q4g128/t16 q3g64 q2g16 q2g16/t16 "
      "bf16; /t16 = the CPU backend's 16-row tiled layout; ggml's block types as ggml spells them: Q8_0, Q4_K, "
      "Q6_K, IQ4_XS, ...)");
  CLI11_PARSE(app, argc, argv);
  moe::cpu::set_num_threads(threads);  // the kernels' pool, and OpenMP (the read-bound pass)

  const auto machine = moe::bench::machine_info();
  const auto git = moe::bench::git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const std::string date = moe::bench::utc_now_iso8601();
  std::printf("moe_bench_qgemv: %s, %d threads, qlinear SIMD path %s\n", machine.cpu_model.c_str(), threads,
              moe::cpu::qisa_name(moe::cpu::qisa_current()));

  std::vector<double> bw_all;
  const double bw = read_bandwidth(size_t{1} << 30, 11, bw_all);
  std::printf("read bandwidth (sum over 1 GiB, median of %zu): %.1f GB/s\n\n", bw_all.size(), bw);

  if (format_args.empty())
    format_args = {"q8g64",      "q8g64/t16", "q4g64", "q4g64/t16", "q4g128",
                   "q4g128/t16", "q3g64",     "q2g16", "q2g16/t16", "bf16"};
  std::vector<Case> cases;
  for (const std::string& name : format_args) {
    if (name == "bf16") {
      cases.push_back(Case{"bf16", moe::QuantFormat{}, true});
      continue;
    }
    const bool tiled = name.size() > 4 && name.ends_with("/t16");
    const auto f = moe::parse_quant_format(tiled ? name.substr(0, name.size() - 4) : name);
    if (!f || (tiled && !moe::cpu::qtile_has_layout(*f))) {
      std::fprintf(stderr, "moe_bench_qgemv: unknown format '%s' (q8g64, q4g128, q2g16, q4g64/t16, bf16, ...)\n",
                   name.c_str());
      return 2;
    }
    cases.push_back(Case{case_name(*f) + (tiled ? "/t16" : ""), *f, false,
                         tiled ? moe::QuantLayout::kTile16 : moe::QuantLayout::kRows});
  }
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (const std::string& s : shape_args) {
    long long n = 0, k = 0;
    char tail = 0;
    if (std::sscanf(s.c_str(), "%lldx%lld%c", &n, &k, &tail) != 2 || n <= 0 || k <= 0 || k % 256 != 0) {
      std::fprintf(stderr, "moe_bench_qgemv: --shape '%s' is not NxK with K a positive multiple of 256\n", s.c_str());
      return 2;
    }
    shapes.emplace_back(n, k);
  }
  if (shapes.empty()) shapes = {{14336, 4096}, {4096, 14336}};

  std::mt19937 rng(1);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  std::printf("%-10s %3s %6s %6s %8s %9s %9s %8s %7s %10s\n", "format", "T", "N", "K", "bits/w", "MB", "ms", "GB/s",
              "of BW", "Gw*tok/s");
  for (const int64_t T : token_counts)
    for (const auto& [N, K] : shapes) {
      std::vector<float> x(static_cast<size_t>(T * K)), y(static_cast<size_t>(T * N));
      std::normal_distribution<float> nd;
      for (float& v : x) v = nd(rng);
      for (const Case& c : cases) {
        const size_t bytes =
            c.bf16 ? static_cast<size_t>(N * K) * 2 : static_cast<size_t>(N) * moe::quant_row_bytes(c.f, K);
        const int copies = std::max(2, static_cast<int>(cache_bytes / static_cast<double>(bytes)) + 1);
        std::vector<std::vector<uint8_t>> w;
        for (int i = 0; i < copies; ++i) {
          if (c.bf16) {
            std::vector<uint8_t> b(bytes);
            for (size_t j = 0; j < bytes; j += 2) {
              const uint16_t h = moe::f32_to_bf16(nd(rng) * 0.02f);
              std::memcpy(b.data() + j, &h, 2);
            }
            w.push_back(std::move(b));
          } else {
            w.push_back(make_weights(rng, c.f, N, K));
            if (c.layout == moe::QuantLayout::kTile16) moe::cpu::qtile_pack_in_place(w.back().data(), c.f, N, K);
          }
        }
        std::vector<double> secs;
        for (int r = -copies; r < reps; ++r) {  // the first round over the copies is warm-up
          const uint8_t* wp = w[static_cast<size_t>((r + copies) % copies)].data();
          const auto t0 = Clock::now();
          if (c.bf16)
            moe::cpu::linear(x.data(), T, K, moe::WeightRef{wp, moe::DType::kBF16}, N, moe::WeightRef{}, y.data());
          else
            moe::cpu::qlinear(x.data(), T, K, moe::cpu::QWeight{wp, c.f, c.layout}, N, moe::WeightRef{}, y.data());
          const double s = seconds_since(t0);
          if (r >= 0) secs.push_back(s);
        }
        const double med = moe::bench::median(secs);
        const double gbs = static_cast<double>(bytes) / med / 1e9;
        const double bits = 8.0 * static_cast<double>(bytes) / static_cast<double>(N * K);
        const double gwt = static_cast<double>(N * K * T) / med / 1e9;
        std::printf("%-10s %3lld %6lld %6lld %8.3f %9.1f %9.3f %8.1f %6.0f%% %10.1f\n", c.name.c_str(),
                    static_cast<long long>(T), static_cast<long long>(N), static_cast<long long>(K), bits,
                    static_cast<double>(bytes) / 1e6, med * 1e3, gbs, 100.0 * gbs / bw, gwt);
        results.push_back({{"format", c.name},
                           {"tokens", T},
                           {"giga_weight_tokens_per_second", gwt},
                           {"N", N},
                           {"K", K},
                           {"bits_per_weight", bits},
                           {"weight_bytes", bytes},
                           {"median_ms", med * 1e3},
                           {"gbs", gbs},
                           {"fraction_of_read_bw", gbs / bw},
                           {"kernel", c.bf16 ? "cpu::linear" : "cpu::qlinear"},
                           {"reps", reps},
                           {"copies_cycled", copies}});
      }
    }

  nlohmann::ordered_json rec;
  rec["benchmark"] = "moe_bench_qgemv";
  rec["schema_version"] = 1;
  rec["git"] = {{"commit", git.commit}, {"dirty", git.dirty}};
  rec["date"] = date;
  rec["machine"] = moe::bench::to_json(machine);
  rec["threads"] = threads;
  rec["qlinear_simd"] = moe::cpu::qisa_name(moe::cpu::qisa_current());
  rec["read_bandwidth"] = {
      {"what", "sum of floats over a 1 GiB buffer, static share per thread"}, {"median_gbs", bw}, {"all_gbs", bw_all}};
  rec["results"] = results;
  std::ofstream f(out);
  if (!f) {
    std::fprintf(stderr, "error: cannot write %s\n", out.c_str());
    return 1;
  }
  f << rec.dump(2) << "\n";
  std::printf("\nwrote %s\n", out.c_str());
  return 0;
}
