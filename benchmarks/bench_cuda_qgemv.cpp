// moe_bench_cuda_qgemv: the CUDA backend's projection kernels alone, at large shapes, per weight
// format: decode GEMV (T = 1, and T = 4) as achieved GB/s of weight bytes read against the
// device's copy and read bandwidth measured in the same run, and the prefill GEMM (tensor cores,
// T = --prefill-tokens) as TFLOP/s. Prints a table and writes one JSON record naming the device.
//
// Each case cycles through enough copies of its weights that they exceed the L2 cache several
// times over, so every call reads its weights from HBM. Weights are random codes with sane
// scales (timing does not depend on the values); they are written in the stored layout and
// repacked on the device exactly as CudaBackend::load_weight does.
//
// A CUDA program (includes kernels/cuda's host headers); built only when MOE_HAVE_CUDA.
#include <algorithm>
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
#include "kernels/cuda/bandwidth.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/device.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/quant_repack.cuh"
#include "kernels/quant/quant_format.h"

#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif
#ifndef MOE_CONFIGURE_COMMIT
#define MOE_CONFIGURE_COMMIT ""
#endif

namespace {

using moe::cuda::Elem;
using moe::cuda::QFormat;
using moe::cuda::WeightOperand;

struct Format {
  std::string name;
  QFormat q = QFormat::kNone;
  Elem elem = Elem::kBF16;
  int group = 0;
};

Format parse_format(const std::string& s) {
  if (s == "bf16") return {s, QFormat::kNone, Elem::kBF16, 0};
  if (s == "f16") return {s, QFormat::kNone, Elem::kF16, 0};
  if (s == "f32") return {s, QFormat::kNone, Elem::kF32, 0};
  const std::optional<moe::QuantFormat> f = moe::parse_quant_format(s);
  if (!f) throw std::invalid_argument("--formats: unknown format '" + s + "'");
  const QFormat q = f->type == moe::QuantType::kQ8   ? QFormat::kQ8
                    : f->type == moe::QuantType::kQ4 ? QFormat::kQ4
                    : f->type == moe::QuantType::kQ3 ? QFormat::kQ3
                                                     : QFormat::kQ2;
  return {moe::quant_format_name(*f), q, Elem::kF32, f->group_size};
}

// Stored-layout bytes of an (N, K) weight: random codes, scale ~ 0.02 / code spread, zero mid.
std::vector<uint8_t> random_weight(const Format& f, int64_t N, int64_t K, uint64_t seed) {
  WeightOperand w;
  w.q = f.q;
  w.elem = f.elem;
  w.group = f.group;
  w.n = N;
  w.k = K;
  std::vector<uint8_t> bytes(static_cast<size_t>(w.row_bytes() * N));
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(bytes.data() + i, &r, 8);
  }
  if (f.q == QFormat::kNone) {  // sane values: random signs and mantissas, exponents near 2^-6
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
      if (f.elem == Elem::kBF16) bytes[i + 1] = static_cast<uint8_t>((bytes[i + 1] & 0x80) | 0x3C);
      if (f.elem == Elem::kF16) bytes[i + 1] = static_cast<uint8_t>((bytes[i + 1] & 0x83) | 0x20);
    }
    if (f.elem == Elem::kF32)
      for (size_t i = 0; i + 3 < bytes.size(); i += 4)
        bytes[i + 3] = static_cast<uint8_t>((bytes[i + 3] & 0x80) | 0x3C);
    return bytes;
  }
  const int64_t nb = K / f.group;
  const int64_t block = w.row_bytes() / nb;
  const int levels = 1 << moe::cuda::qformat_bits(f.q);
  const uint16_t scale = moe::f32_to_f16(0.02f / static_cast<float>(levels) * 2.0f);
  const uint16_t zero = moe::f32_to_f16(static_cast<float>(levels - 1) / 2.0f);
  for (int64_t b = 0; b < N * nb; ++b) {
    uint8_t* p = bytes.data() + b * block;
    std::memcpy(p, &scale, 2);
    std::memcpy(p + 2, &zero, 2);
  }
  return bytes;
}

struct Timing {
  double median_ms = 0;
  std::vector<double> all_ms;
};

template <class Launch>
Timing time_calls(int copies, int reps, cudaStream_t s, Launch&& launch) {
  moe::cuda::Event start(true), stop(true);
  for (int c = 0; c < copies; ++c) launch(c);  // warm-up
  Timing t;
  const int per_rep = std::max(copies, 20);
  for (int r = 0; r < reps; ++r) {
    start.record(s);
    for (int i = 0; i < per_rep; ++i) launch(i % copies);
    stop.record(s);
    stop.synchronize();
    t.all_ms.push_back(moe::cuda::Event::elapsed_ms(start, stop) / per_rep);
  }
  std::vector<double> v = t.all_ms;
  std::sort(v.begin(), v.end());
  t.median_ms = v[v.size() / 2];
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "moe_bench_cuda_qgemv: decode GEMV bandwidth and prefill GEMM throughput of the CUDA kernels per format"};
  int device = 0, reps = 7;
  int64_t prefill_tokens = 512, cycle_mib = 512;
  std::vector<std::string> formats = {"bf16", "f16", "q8g64", "q4g64", "q4g128", "q3g64", "q2g16", "q2g64"};
  std::string shapes_arg = "14336x4096,4096x14336,32000x4096";
  std::string out;
  app.add_option("--device", device, "CUDA device ordinal")->capture_default_str();
  app.add_option("--formats", formats, "Weight formats: bf16, f16, f32, q8gG, q4gG, q3gG, q2gG")->capture_default_str();
  app.add_option("--shapes", shapes_arg, "NxK weight shapes, comma-separated")->capture_default_str();
  app.add_option("--reps", reps, "Timed repetitions (median quoted)")->capture_default_str();
  app.add_option("--prefill-tokens", prefill_tokens, "Token rows of the prefill GEMM")->capture_default_str();
  app.add_option("--cycle-mib", cycle_mib, "Weight copies cycled per case: at least this many MiB in all")
      ->capture_default_str();
  app.add_option("--out", out, "JSON record (default <source>/benchmarks/results/cuda-qgemv-<gpu>.json)");
  CLI11_PARSE(app, argc, argv);

  try {
    const moe::cuda::DeviceProps props = moe::cuda::select_device(device);
    std::string gpu_tag = props.name;
    for (char& ch : gpu_tag) ch = std::isalnum(static_cast<unsigned char>(ch)) ? std::tolower(ch) : '-';
    if (out.empty()) out = std::string(MOE_SOURCE_DIR) + "/benchmarks/results/cuda-qgemv-" + gpu_tag + ".json";
    const moe::bench::GitRevision git = moe::bench::git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
    const moe::bench::MachineInfo machine = moe::bench::machine_info();

    std::fprintf(stderr, "measuring device bandwidth on %s ...\n", props.name.c_str());
    const moe::cuda::DeviceBandwidth bw = moe::cuda::measure_device_bandwidth(size_t{1} << 30, 10);
    const double copy_gbs = *std::max_element(bw.copy_gbs.begin(), bw.copy_gbs.end());
    const double read_gbs = *std::max_element(bw.read_gbs.begin(), bw.read_gbs.end());

    std::vector<std::pair<int64_t, int64_t>> shapes;
    for (size_t pos = 0; pos < shapes_arg.size();) {
      const size_t comma = std::min(shapes_arg.find(',', pos), shapes_arg.size());
      const std::string s = shapes_arg.substr(pos, comma - pos);
      const size_t x = s.find('x');
      shapes.emplace_back(std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1)));
      pos = comma + 1;
    }

    moe::cuda::Stream stream;
    moe::cuda::DevicePool pool;
    std::printf("moe_bench_cuda_qgemv   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "",
                moe::bench::utc_now_iso8601().c_str());
    std::printf(
        "device    %s, sm_%d%d, %d SMs, %.1f GiB; copy %.0f GB/s (read + write), read %.0f GB/s, peak %.0f GB/s\n\n",
        props.name.c_str(), props.major, props.minor, props.multiprocessors,
        static_cast<double>(props.total_memory) / (1 << 30), copy_gbs, read_gbs, props.peak_bandwidth_gbs());
    std::printf("%-8s %6s %6s %8s | %9s %8s %6s %6s | %9s %8s | %9s %8s\n", "format", "N", "K", "MB", "T=1 us", "GB/s",
                "%read", "%copy", "T=4 us", "GB/s", "T=P ms", "TFLOP/s");
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (const std::string& fs : formats) {
      const Format f = parse_format(fs);
      for (const auto& [N, K] : shapes) {
        if (f.group > 0 && K % f.group != 0) continue;
        const std::vector<uint8_t> host = random_weight(f, N, K, 1234);
        const uint64_t bytes = host.size();
        const int copies =
            static_cast<int>(std::max<uint64_t>(2, (static_cast<uint64_t>(cycle_mib) << 20) / bytes + 1));
        moe::cuda::DevicePool wpool;
        std::vector<WeightOperand> ws;
        void* staging = wpool.allocate(bytes);
        MOE_CUDA_CHECK(cudaMemcpy(staging, host.data(), bytes, cudaMemcpyHostToDevice));
        for (int c = 0; c < copies; ++c) {
          WeightOperand w;
          w.q = f.q;
          w.elem = f.elem;
          w.group = f.group;
          w.n = N;
          w.k = K;
          void* d = wpool.allocate(bytes);
          if (f.q == QFormat::kNone)
            MOE_CUDA_CHECK(cudaMemcpy(d, staging, bytes, cudaMemcpyDeviceToDevice));
          else
            moe::cuda::repack_quantized(staging, d, N, K, f.q, f.group, stream.get());
          w.data = d;
          ws.push_back(w);
        }
        stream.synchronize();
        const int64_t P = prefill_tokens;
        std::vector<float> xh(static_cast<size_t>(P * K));
        std::mt19937 rng(7);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (float& v : xh) v = nd(rng);
        auto* x = static_cast<float*>(wpool.allocate(xh.size() * sizeof(float)));
        auto* y = static_cast<float*>(wpool.allocate(static_cast<size_t>(P * N) * sizeof(float)));
        auto* scratch = static_cast<float*>(
            wpool.allocate(static_cast<size_t>(std::max<int64_t>(1, moe::cuda::gemm_scratch_floats(P, ws[0]))) * 4));
        MOE_CUDA_CHECK(cudaMemcpy(x, xh.data(), xh.size() * sizeof(float), cudaMemcpyHostToDevice));
        const moe::cuda::BiasOperand nobias{};
        const Timing t1 = time_calls(copies, reps, stream.get(),
                                     [&](int c) { moe::cuda::gemv(x, 1, ws[c], nobias, y, stream.get()); });
        const Timing t4 = time_calls(copies, reps, stream.get(),
                                     [&](int c) { moe::cuda::gemv(x, 4, ws[c], nobias, y, stream.get()); });
        const Timing tp = time_calls(copies, std::max(3, reps / 2), stream.get(), [&](int c) {
          moe::cuda::gemm(x, static_cast<int>(P), ws[c], nobias, y, scratch, stream.get());
        });
        const double gbs1 = static_cast<double>(bytes) / (t1.median_ms * 1e6);
        const double gbs4 = static_cast<double>(bytes) / (t4.median_ms * 1e6);
        const double tflops = 2.0 * static_cast<double>(P * N * K) / (tp.median_ms * 1e9);
        std::printf("%-8s %6lld %6lld %8.1f | %9.1f %8.0f %5.0f%% %5.0f%% | %9.1f %8.0f | %9.3f %8.1f\n",
                    f.name.c_str(), static_cast<long long>(N), static_cast<long long>(K),
                    static_cast<double>(bytes) / 1e6, t1.median_ms * 1e3, gbs1, 100 * gbs1 / read_gbs,
                    100 * gbs1 / copy_gbs, t4.median_ms * 1e3, gbs4, tp.median_ms, tflops);
        results.push_back({{"format", f.name},
                           {"N", N},
                           {"K", K},
                           {"weight_bytes", bytes},
                           {"copies_cycled", copies},
                           {"gemv_t1_us", t1.median_ms * 1e3},
                           {"gemv_t1_gbs", gbs1},
                           {"gemv_t1_fraction_of_read_bw", gbs1 / read_gbs},
                           {"gemv_t1_fraction_of_copy_bw", gbs1 / copy_gbs},
                           {"gemv_t4_us", t4.median_ms * 1e3},
                           {"gemv_t4_gbs", gbs4},
                           {"gemm_tokens", P},
                           {"gemm_ms", tp.median_ms},
                           {"gemm_tflops", tflops},
                           {"gemv_t1_all_us", t1.all_ms}});
      }
    }
    nlohmann::ordered_json rec;
    rec["benchmark"] = "moe_bench_cuda_qgemv";
    rec["schema_version"] = 1;
    rec["git"] = {{"commit", git.commit}, {"dirty", git.dirty}};
    rec["date"] = moe::bench::utc_now_iso8601();
    rec["machine"] = moe::bench::to_json(machine);
    rec["device"] = {{"name", props.name},
                     {"index", props.index},
                     {"compute_capability", std::to_string(props.major) + "." + std::to_string(props.minor)},
                     {"multiprocessors", props.multiprocessors},
                     {"memory_bytes", props.total_memory},
                     {"peak_bandwidth_gbs", props.peak_bandwidth_gbs()}};
    rec["bandwidth"] = {
        {"copy_gbs", copy_gbs},
        {"read_gbs", read_gbs},
        {"copy_gbs_reps", bw.copy_gbs},
        {"read_gbs_reps", bw.read_gbs},
        {"array_bytes", bw.array_bytes},
        {"what",
         "copy: cudaMemcpy device to device of 1 GiB, counted as read + write bytes; read: a kernel "
         "summing 1 GiB with 128-bit loads; best of 10. A GEMV only reads: read_gbs is its ceiling, and "
         "fraction_of_copy_bw (against read + write bytes) can exceed 1"}};
    rec["results"] = results;
    std::ofstream f(out);
    if (!f) {
      std::fprintf(stderr, "error: cannot write %s\n", out.c_str());
      return 1;
    }
    f << rec.dump(2) << "\n";
    std::printf("\nwrote %s\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_cuda_qgemv: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
