// moe_bench_project: calibrates the scaling cost model (parallel/scaling_model.h) on the runs
// moe_bench_parallel measured, prints measured against predicted, then projects tokens/s and
// efficiency for 1-64 GPUs over named links, for a Mixtral-8x7B-shaped model in q4 and for the
// measured model. Writes a JSON record and, when gnuplot is installed, a PNG plot.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/scaling_model.h"
#include "runtime/core/error.h"

#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif

namespace moe::parallel {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

Mode mode_of(const std::string& s) {
  if (s == "single") return Mode::kSingle;
  if (s == "tp") return Mode::kTensor;
  if (s == "ep") return Mode::kExpert;
  if (s == "pp") return Mode::kPipeline;
  fail("unknown mode '", s, "'");
}

// Mixtral-8x7B (32 layers, hidden 4096, 32/8 heads x 128, 8 experts top-2 x 14336, vocab 32000)
// in q4 groups of 64: 4.5 bits per weight.
DecodeBytes mixtral_8x7b_q4() {
  const double b = 4.5 / 8, H = 4096, L = 32;
  DecodeBytes m;
  m.layers = 32;
  m.hidden = 4096;
  m.attention = L * H * (4096 * 2 + 1024 * 2) * b;
  m.experts = L * 2 * 3 * H * 14336 * b;
  m.lm_head = 32000 * H * b;
  m.replicated = L * (8 * H * b + 2 * H * 2) + H * 2 + H * b;
  m.total = m.attention + m.experts + m.lm_head + m.replicated;
  return m;
}

int run(const std::string& measured_path, const std::string& out_path, const std::string& png_path) {
  std::ifstream in(measured_path);
  MOE_CHECK(in.good(), measured_path, ": cannot open (run moe_bench_parallel first)");
  json rec;
  in >> rec;
  const json& jm = rec.at("model");
  DecodeBytes measured_model;
  measured_model.layers = jm.at("layers").get<int64_t>();
  measured_model.hidden = jm.at("hidden").get<int64_t>();
  measured_model.total = jm.at("weight_bytes_per_token").get<double>();
  measured_model.attention = jm.at("attention_bytes_per_token").get<double>();
  measured_model.experts = jm.at("expert_bytes_per_token").get<double>();
  measured_model.lm_head = jm.at("lm_head_bytes").get<double>();
  measured_model.replicated = jm.at("replicated_bytes_per_token").get<double>();
  std::vector<Measured> runs;
  for (const json& r : rec.at("runs")) {
    if (r.at("threads_per_rank").get<int>() != 1) continue;  // the model is of ranks, not threads
    runs.push_back(Measured{mode_of(r.at("mode").get<std::string>()), r.at("ranks").get<int>(),
                            r.at("in_flight").get<int>(), r.at("tokens_per_second").get<double>(),
                            r.at("comm_seconds_per_token").get<double>(), r.at("comm_calls_per_token").get<double>()});
  }
  const Calibration cal = calibrate(measured_model, runs);
  std::printf("calibration on %s (%s)\n", measured_path.c_str(), rec.value("git", "?").c_str());
  std::printf("  rank alone %.1f GB/s, each of 2 ranks streaming at once %.1f GB/s, alpha %.1f us, beta %.1f GB/s\n\n",
              cal.device.rank_rate / 1e9, cal.device.shared_rate / 1e9, cal.link.alpha * 1e6, cal.link.beta / 1e9);
  std::printf("%-7s %5s %9s %12s %12s %8s  %s\n", "mode", "ranks", "in flight", "measured", "predicted", "error",
              "(calibrated on)");
  json checks = json::array();
  const char* names[] = {"single", "tp", "ep", "pp"};
  int within = 0;
  for (const Measured& r : runs) {
    const double p = tokens_per_second(measured_model, cal.device, cal.link, r.mode, r.ranks, r.in_flight);
    const double err = p / r.tokens_per_second - 1;
    const bool fit = (r.mode == Mode::kSingle && r.in_flight == 1) || (r.mode == Mode::kPipeline && r.in_flight == 2);
    within += std::abs(err) <= 0.15 ? 1 : 0;
    std::printf("%-7s %5d %9d %12.1f %12.1f %+7.0f%%  %s\n", names[static_cast<int>(r.mode)], r.ranks, r.in_flight,
                r.tokens_per_second, p, 100 * err,
                fit                       ? "rate calibrated on it"
                : r.mode == Mode::kTensor ? "latency (alpha) calibrated on it, the rest predicted"
                                          : "");
    checks.push_back({{"mode", names[static_cast<int>(r.mode)]},
                      {"ranks", r.ranks},
                      {"in_flight", r.in_flight},
                      {"measured", r.tokens_per_second},
                      {"predicted", p},
                      {"error", err},
                      {"used_in_calibration", fit}});
  }
  std::printf("  %d of %zu points within 15%%\n\n", within, runs.size());

  const std::vector<Link> links = {{"NVLink 450 GB/s", 3e-6, 450e9},
                                   {"InfiniBand NDR 50 GB/s", 5e-6, 50e9},
                                   {"PCIe Gen5 50 GB/s", 10e-6, 50e9},
                                   {"10 GbE 1.25 GB/s", 30e-6, 1.25e9}};
  // An H100/H200-class GPU: HBM 3.35-4.8 TB/s; decode kernels reach ~2.5 TB/s (assumed), each GPU
  // its own memory (no sharing between ranks).
  const Device gpu{"H100/H200-class GPU, 2.5 TB/s effective", 2.5e12, 2.5e12};
  json projections = json::array();
  std::ofstream dat(fs::path(out_path).replace_extension(".dat"));
  for (const auto& [model_name, m] : std::vector<std::pair<std::string, DecodeBytes>>{
           {"Mixtral-8x7B q4", mixtral_8x7b_q4()}, {"measured model (mixtral-moderate q4)", measured_model}}) {
    std::printf("projection: %s (%.1f MB per token) on %s\n", model_name.c_str(), m.total / 1e6, gpu.name.c_str());
    std::printf("%-24s %5s %12s %6s %12s %6s %12s %6s\n", "link", "GPUs", "TP tok/s", "eff", "PP tok/s", "eff",
                "EP tok/s", "eff");
    for (const Link& l : links) {
      for (const int n : {1, 2, 4, 8, 16, 32, 64}) {
        const double one = tokens_per_second(m, gpu, l, Mode::kSingle, 1, 1);
        const double tp = tokens_per_second(m, gpu, l, Mode::kTensor, n, 1);
        const double pp = n <= m.layers ? tokens_per_second(m, gpu, l, Mode::kPipeline, n, n) : 0;
        const double ep = n <= 8 ? tokens_per_second(m, gpu, l, Mode::kExpert, n, 1) : 0;
        std::printf("%-24s %5d %12.0f %5.0f%% %12.0f %5.0f%% %12.0f %5.0f%%\n", l.name.c_str(), n, tp,
                    100 * tp / one / n, pp, 100 * pp / one / n, ep, 100 * ep / one / n);
        projections.push_back({{"model", model_name},
                               {"link", l.name},
                               {"gpus", n},
                               {"tp_tokens_per_second", tp},
                               {"tp_efficiency", tp / one / n},
                               {"pp_tokens_per_second_n_in_flight", pp},
                               {"pp_efficiency", pp / one / n},
                               {"ep_tokens_per_second", ep},
                               {"ep_efficiency", ep / one / n}});
        if (model_name == "Mixtral-8x7B q4")
          dat << '"' << l.name << "\" " << n << " " << tp / one / n << " "
              << (pp > 0 ? std::to_string(pp / one / n) : std::string("NaN")) << "\n";  // NaN: more stages than layers
      }
      if (model_name == "Mixtral-8x7B q4") dat << "\n\n";
      std::printf("\n");
    }
  }
  dat.close();
  const json out = {{"benchmark", "parallel-projection"},
                    {"measured", measured_path},
                    {"measured_git", rec.value("git", "")},
                    {"calibration",
                     {{"rank_rate_bytes_per_s", cal.device.rank_rate},
                      {"shared_rate_bytes_per_s", cal.device.shared_rate},
                      {"alpha_s", cal.link.alpha},
                      {"beta_bytes_per_s", cal.link.beta}}},
                    {"checks", checks},
                    {"gpu_assumption", gpu.name},
                    {"projections", projections}};
  std::ofstream(out_path) << out.dump(1) << "\n";
  std::printf("record    %s\n", out_path.c_str());
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::printf("plot      skipped: gnuplot is not installed (apt-get install gnuplot-nox)\n");
    return 0;
  }
  const fs::path dat_path = fs::path(out_path).replace_extension(".dat");
  const std::string script = str_cat(
      "set terminal pngcairo size 1000,600; set output '", png_path,
      "'; set logscale x 2; set xlabel 'GPUs'; set ylabel 'efficiency (speedup / GPUs)'; set yrange [0:1.05];",
      " set key outside; set title 'Mixtral-8x7B q4 decode, projected (TP solid: 1 sequence; PP dashed: N in flight)';",
      " plot for [i=0:3] '", dat_path.string(),
      "' index i using 2:3 with linespoints lw 2 title columnheader(1).' TP',", " for [i=0:3] '", dat_path.string(),
      "' index i using 2:4 with linespoints dt 2 title columnheader(1).' PP'");
  const std::string cmd = "gnuplot -e \"" + script + "\"";
  if (std::system(cmd.c_str()) == 0)
    std::printf("plot      %s\n", png_path.c_str());
  else
    std::printf("plot      gnuplot failed\n");
  fs::remove(dat_path);
  return 0;
}

}  // namespace
}  // namespace moe::parallel

int main(int argc, char** argv) {
  const std::string results = std::string(MOE_SOURCE_DIR) + "/benchmarks/results/";
  std::string measured = results + "cpu-parallel-mixtral-moderate-q4.json";
  std::string out = results + "projection-parallel.json";
  std::string png = results + "projection-parallel.png";
  CLI::App app{"moe_bench_project: the scaling cost model, calibrated on moe_bench_parallel's runs, projected"};
  app.add_option("--measured", measured, "moe_bench_parallel's record")->capture_default_str();
  app.add_option("--out", out, "JSON record")->capture_default_str();
  app.add_option("--png", png, "plot")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return moe::parallel::run(measured, out, png);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_project: error: %s\n", e.what());
    return 1;
  }
}
