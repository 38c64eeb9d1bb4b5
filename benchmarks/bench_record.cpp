#include "benchmarks/bench_record.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "runtime/core/error.h"

namespace moe::bench {
namespace {

// Runs a shell command and returns its stdout without trailing whitespace; ok is false when it
// could not be started or exited non-zero.
std::string run_command(const std::string& command, bool& ok) {
  ok = false;
  std::string out;
  FILE* raw = ::popen(command.c_str(), "r");
  if (raw == nullptr) return out;
  std::array<char, 256> buf{};
  size_t got = 0;
  while ((got = std::fread(buf.data(), 1, buf.size(), raw)) > 0) out.append(buf.data(), got);
  const int status = ::pclose(raw);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.pop_back();
  ok = status == 0;
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

GitRevision git_revision(const std::string& source_dir, const std::string& configure_commit) {
  GitRevision r;
  bool ok = false;
  const std::string git = "git -C " + shell_quote(source_dir);
  const std::string hash = run_command(git + " rev-parse --short HEAD 2>/dev/null", ok);
  if (ok && !hash.empty()) {
    r.commit = hash;
    const std::string changes =
        run_command(git + " status --porcelain --untracked-files=no -- . ':!benchmarks/results' 2>/dev/null", ok);
    r.dirty = ok && !changes.empty();
  } else if (!configure_commit.empty()) {
    r.commit = configure_commit;
  }
  return r;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

std::string load_average() {
  std::istringstream in(first_line("/proc/loadavg"));
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "" : a + " " + b + " " + c;
}

MachineInfo machine_info() {
  MachineInfo m;
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) == 0) m.hostname = host.data();
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos) m.cpu_model = line.substr(line.find_first_not_of(" \t", colon + 1));
    break;
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.logical_cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    double kib = 0;
    meminfo >> kib;
    if (key == "MemTotal:") {
      m.ram_gib = kib / (1024.0 * 1024.0);
      break;
    }
    meminfo.ignore(1 << 10, '\n');
  }
  m.load_average = load_average();
  return m;
}

nlohmann::ordered_json to_json(const MachineInfo& m) {
  return {{"hostname", m.hostname},
          {"cpu_model", m.cpu_model},
          {"logical_cores", m.logical_cores},
          {"ram_gib", m.ram_gib},
          {"load_average_at_start", m.load_average}};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : 0.5 * (v[mid - 1] + v[mid]);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

void write_record(const std::filesystem::path& out, const nlohmann::ordered_json& record) {
  std::error_code ec;
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path(), ec);
  std::ofstream f(out);
  f << record.dump(2) << "\n";
  MOE_CHECK(f.good(), out.string(), ": cannot write the benchmark record");
}

}  // namespace moe::bench
