// Pieces every benchmark record carries: the source revision, the date, the machine, and the
// summary statistic of repeated measurements.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::bench {

struct GitRevision {
  std::string commit = "unknown";  // short hash
  bool dirty = false;              // tracked files modified relative to the commit
};

// `git rev-parse --short HEAD` in `source_dir` at run time; when git or the repository is
// unavailable, `configure_commit` (the hash recorded at configure time, may be empty), else
// "unknown".
GitRevision git_revision(const std::string& source_dir, const std::string& configure_commit);

// Current UTC time as ISO 8601, e.g. "2025-01-31T12:34:56Z".
std::string utc_now_iso8601();

struct MachineInfo {
  std::string hostname;
  std::string cpu_model;     // /proc/cpuinfo "model name" (first one)
  int logical_cores = 0;     // online processors
  double ram_gib = 0;        // /proc/meminfo MemTotal
  std::string load_average;  // /proc/loadavg's first three fields, when read
};
MachineInfo machine_info();
// /proc/loadavg's 1, 5 and 15 minute averages ("" when unreadable).
std::string load_average();
nlohmann::ordered_json to_json(const MachineInfo& m);

// Median (mean of the middle two for an even count); 0 for none.
double median(std::vector<double> v);
// Mean; 0 for none.
double mean(const std::vector<double>& v);
// The p-th percentile (0..100) by linear interpolation between ranks, as numpy's default; 0 for none.
double percentile(std::vector<double> v, double p);

// Writes a benchmark's JSON record to `out` (parent directories created). Throws moe::Error
// naming the file when it cannot be written.
void write_record(const std::filesystem::path& out, const nlohmann::ordered_json& record);

}  // namespace moe::bench
