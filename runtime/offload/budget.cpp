#include "runtime/offload/budget.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/core/error.h"

namespace moe {

uint64_t parse_mem_size(const std::string& text, const char* option) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail(option, ": '", text, "' is not a size (examples: 24G, 512M, 1.5GiB, 1000000)");
  }
  std::string unit = text.substr(pos);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
  double scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    scale = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    fail(option, ": '", text, "' has an unknown unit '", text.substr(pos), "' (use K, M, G or T)");
  MOE_CHECK(std::isfinite(value) && value >= 0, option, ": '", text, "' must be a non-negative size");
  return static_cast<uint64_t>(std::llround(value * scale));
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (bytes >= (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else if (bytes >= (uint64_t{1} << 10))
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

MachineMemory machine_memory() {
  MachineMemory m;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    uint64_t kib = 0;
    s >> key >> kib;
    if (key == "MemTotal:") m.total = kib * 1024;
    if (key == "MemAvailable:") m.available = kib * 1024;
  }
  return m;
}

uint64_t default_host_budget() {
  return machine_memory().available / 10 * 9;
}

std::string HostTierBudget::describe(const char* tier) const {
  return str_cat(tier, " ", format_bytes(host_mem), ": dense ", format_bytes(dense), ", KV cache ",
                 format_bytes(kv_cache), ", workspace ", format_bytes(workspace), ", ", slots, " expert slots x ",
                 format_bytes(slot_bytes), staging_slots ? str_cat(" + ", staging_slots, " staging") : std::string(),
                 " = ", format_bytes(expert_bytes()), " (", slots, " of ", experts_total, " experts, ",
                 static_cast<int>(std::lround(100 * resident_fraction())), "%)");
}

HostTierBudget plan_host_tier(uint64_t host_mem, uint64_t dense, uint64_t kv_cache, uint64_t workspace,
                              uint64_t slot_bytes, int64_t experts_total, int64_t min_slots, int64_t staging_slots,
                              const char* option) {
  MOE_CHECK(slot_bytes > 0, "plan_host_tier: zero slot size");
  HostTierBudget b{.host_mem = host_mem,
                   .dense = dense,
                   .kv_cache = kv_cache,
                   .workspace = workspace,
                   .slot_bytes = slot_bytes,
                   .experts_total = experts_total,
                   .slots = 0,
                   .staging_slots = staging_slots};
  const uint64_t fixed = dense + kv_cache + workspace;
  const int64_t need_slots = std::min(min_slots, experts_total) + staging_slots;
  const uint64_t need = fixed + static_cast<uint64_t>(need_slots) * slot_bytes;
  if (host_mem < need)
    fail(option, " ", format_bytes(host_mem), " (", host_mem, " bytes) is too small: the dense weights (",
         format_bytes(dense), "), KV cache (", format_bytes(kv_cache), ") and workspaces (", format_bytes(workspace),
         ") take ", format_bytes(fixed), " (", fixed, " bytes), and at least ", need_slots, " expert slot",
         need_slots == 1 ? "" : "s", " of ", format_bytes(slot_bytes), need_slots == 1 ? " is" : " are",
         " needed on top: use ", option, " of at least ", format_bytes(need), " (", need, " bytes)");
  const uint64_t rest = host_mem - fixed - static_cast<uint64_t>(staging_slots) * slot_bytes;
  b.slots = std::min<int64_t>(experts_total, static_cast<int64_t>(rest / slot_bytes));
  return b;
}

int64_t slots_for_expert_bytes(uint64_t expert_mem, uint64_t slot_bytes, int64_t experts_total, int64_t min_slots) {
  MOE_CHECK(slot_bytes > 0, "slots_for_expert_bytes: zero slot size");
  const int64_t slots = static_cast<int64_t>(expert_mem / slot_bytes);
  return std::min(experts_total, std::max(slots, min_slots));
}

}  // namespace moe
