#include "runtime/offload/offload_stats.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"

namespace moe {

OffloadStepStats& OffloadStepStats::operator+=(const OffloadStepStats& o) {
  tokens += o.tokens;
  used += o.used;
  hits += o.hits;
  misses += o.misses;
  prefetch_hits += o.prefetch_hits;
  streamed += o.streamed;
  evictions += o.evictions;
  prefetch_reads += o.prefetch_reads;
  prefetch_refused += o.prefetch_refused;
  bytes_nvme += o.bytes_nvme;
  bytes_ram += o.bytes_ram;
  prefetch += o.prefetch;
  seconds += o.seconds;
  wait_seconds += o.wait_seconds;
  speculate_seconds += o.speculate_seconds;
  adopt_seconds += o.adopt_seconds;
  host_hits += o.host_hits;
  host_computed += o.host_computed;
  copies += o.copies;
  copy_waits += o.copy_waits;
  bytes_h2d += o.bytes_h2d;
  bytes_vram += o.bytes_vram;
  host_compute_wait_seconds += o.host_compute_wait_seconds;
  return *this;
}

OffloadStepStats OffloadStats::total(size_t begin, size_t end) const {
  OffloadStepStats t;
  end = std::min(end, steps_.size());
  for (size_t i = begin; i < end; ++i) t += steps_[i];
  return t;
}

namespace {

nlohmann::ordered_json to_json(const OffloadStepStats& s) {
  const double per = s.tokens > 0 ? 1.0 / static_cast<double>(s.tokens) : 0;
  return {{"tokens", s.tokens},
          {"experts_used", s.used},
          {"hits", s.hits},
          {"misses", s.misses},
          {"hit_rate", s.hit_rate()},
          {"prefetch_hits", s.prefetch_hits},
          {"cpu_streamed", s.streamed},
          {"evictions", s.evictions},
          {"prefetch_reads", s.prefetch_reads},
          {"prefetch_refused", s.prefetch_refused},
          {"predicted", s.prefetch.predicted},
          {"predicted_and_used", s.prefetch.predicted_and_used},
          {"prefetch_recall", s.prefetch.recall()},
          {"prefetch_precision", s.prefetch.precision()},
          {"bytes_nvme", s.bytes_nvme},
          {"bytes_ram", s.bytes_ram},
          {"bytes_nvme_per_token", static_cast<double>(s.bytes_nvme) * per},
          {"bytes_ram_per_token", static_cast<double>(s.bytes_ram) * per},
          {"seconds", s.seconds},
          {"wait_seconds", s.wait_seconds},
          {"speculate_seconds", s.speculate_seconds},
          {"adopt_seconds", s.adopt_seconds},
          {"host_hits", s.host_hits},
          {"cpu_computed", s.host_computed},
          {"copies", s.copies},
          {"copy_waits", s.copy_waits},
          {"bytes_h2d", s.bytes_h2d},
          {"bytes_vram", s.bytes_vram},
          {"bytes_h2d_per_token", static_cast<double>(s.bytes_h2d) * per},
          {"bytes_vram_per_token", static_cast<double>(s.bytes_vram) * per},
          {"cpu_compute_wait_seconds", s.host_compute_wait_seconds}};
}

}  // namespace

std::string OffloadStats::summary(const std::string& indent) const {
  if (steps_.empty()) return indent + "no offloaded steps\n";
  // Decode steps (one token) separately from prefill chunks: they are what tokens/s measures.
  OffloadStepStats all = total(), decode;
  for (const OffloadStepStats& s : steps_)
    if (s.tokens == 1) decode += s;
  const OffloadStepStats& d = decode.tokens > 0 ? decode : all;
  const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, d.tokens));
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "%sexperts  %llu used, hit rate %.1f%% (%llu hits, %llu of them prefetched; %llu misses, %llu "
                "computed from staging), %llu evictions\n"
                "%sprefetch recall %.1f%%, precision %.1f%% (%llu predicted, %llu used)\n"
                "%sper %s  NVMe %.2f MB, RAM %.2f MB; %.1f ms: %.1f ms waiting for reads, %.1f ms speculating\n",
                indent.c_str(), static_cast<unsigned long long>(all.used), 100 * all.hit_rate(),
                static_cast<unsigned long long>(all.hits), static_cast<unsigned long long>(all.prefetch_hits),
                static_cast<unsigned long long>(all.misses), static_cast<unsigned long long>(all.streamed),
                static_cast<unsigned long long>(all.evictions), indent.c_str(), 100 * all.prefetch.recall(),
                100 * all.prefetch.precision(), static_cast<unsigned long long>(all.prefetch.predicted),
                static_cast<unsigned long long>(all.prefetch.used), indent.c_str(),
                decode.tokens > 0 ? "decoded token" : "token", static_cast<double>(d.bytes_nvme) * per / 1e6,
                static_cast<double>(d.bytes_ram) * per / 1e6, 1e3 * d.seconds * per, 1e3 * d.wait_seconds * per,
                1e3 * d.speculate_seconds * per);
  if (!vram_tier_) return buf;
  char gpu[1024];
  std::snprintf(gpu, sizeof gpu,
                "%sVRAM tier  %llu misses found in RAM, %llu computed on the CPU, %llu copies (%llu waited on); per "
                "%s  VRAM %.2f MB, PCIe %.2f MB, %.1f ms waiting for CPU experts\n",
                indent.c_str(), static_cast<unsigned long long>(all.host_hits),
                static_cast<unsigned long long>(all.host_computed), static_cast<unsigned long long>(all.copies),
                static_cast<unsigned long long>(all.copy_waits), decode.tokens > 0 ? "decoded token" : "token",
                static_cast<double>(d.bytes_vram) * per / 1e6, static_cast<double>(d.bytes_h2d) * per / 1e6,
                1e3 * d.host_compute_wait_seconds * per);
  return std::string(buf) + gpu;
}

void OffloadStats::write_jsonl(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  MOE_CHECK(out.good(), path.string(), ": cannot open for writing the offload stats");
  for (size_t i = 0; i < steps_.size(); ++i) {
    nlohmann::ordered_json j = {{"step", i}};
    j.update(to_json(steps_[i]));
    out << j.dump() << "\n";
  }
  out << nlohmann::ordered_json{{"total", to_json(total())}}.dump() << "\n";
  MOE_CHECK(out.good(), path.string(), ": write failed");
}

}  // namespace moe
