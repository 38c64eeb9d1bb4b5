// Memory budgets of the tiers: parsing sizes from the command line, what the machine has, and
// how many expert slots a budget leaves once the dense weights, the KV cache and the workspaces
// are accounted. Pure functions (no I/O besides /proc/meminfo in machine_memory()).
#pragma once

#include <cstdint>
#include <string>

namespace moe {

// "24G", "24GB", "24GiB", "512M", "1.5G", "1000000" (bytes), "100%" is not a size. Units are
// binary (K = 1024). Throws moe::Error naming `option` and the text when malformed.
uint64_t parse_mem_size(const std::string& text, const char* option);
// "1.50 GiB", "512.0 MiB", "4096 B".
std::string format_bytes(uint64_t bytes);

struct MachineMemory {
  uint64_t total = 0;      // MemTotal
  uint64_t available = 0;  // MemAvailable
};
// From /proc/meminfo; zeros when it cannot be read.
MachineMemory machine_memory();
// The default --host-mem: 90% of what is available now.
uint64_t default_host_budget();

// What the host tier holds, in the order it is accounted.
struct HostTierBudget {
  uint64_t host_mem = 0;  // the budget given (--host-mem)
  uint64_t dense = 0;     // non-expert weights (attention, norms, routers, shared experts, embeddings, LM head)
  uint64_t kv_cache = 0;
  uint64_t workspace = 0;     // activations and scratch
  uint64_t slot_bytes = 0;    // one expert slot (the largest expert, 4 KiB rounded)
  int64_t experts_total = 0;  // routed experts in the model (layers x experts)
  int64_t slots = 0;          // expert slots in the cache
  int64_t staging_slots = 0;  // slots kept outside the cache for streamed misses (--miss-policy cpu/auto)
  uint64_t expert_bytes() const { return static_cast<uint64_t>(slots + staging_slots) * slot_bytes; }
  uint64_t accounted() const { return dense + kv_cache + workspace + expert_bytes(); }
  // Fraction of the routed experts the cache can hold.
  double resident_fraction() const {
    return experts_total > 0 ? static_cast<double>(slots) / static_cast<double>(experts_total) : 0;
  }
  // "host 8.0 GiB: dense ..." (`tier` names the first word: "VRAM" for the device side).
  std::string describe(const char* tier = "host") const;
};

// Accounts dense + KV + workspace first, then as many slots as the rest holds (never more than
// there are experts). Needs room for at least `min_slots` cache slots plus `staging_slots`;
// otherwise throws moe::Error with every number and the smallest --host-mem that would do.
HostTierBudget plan_host_tier(uint64_t host_mem, uint64_t dense, uint64_t kv_cache, uint64_t workspace,
                              uint64_t slot_bytes, int64_t experts_total, int64_t min_slots = 1,
                              int64_t staging_slots = 0, const char* option = "--host-mem");

// The slot count for a budget given directly in expert bytes (benchmarks: "50% of the expert
// bytes"): floor(expert_mem / slot_bytes), at least min_slots, at most experts_total.
int64_t slots_for_expert_bytes(uint64_t expert_mem, uint64_t slot_bytes, int64_t experts_total, int64_t min_slots = 1);

}  // namespace moe
