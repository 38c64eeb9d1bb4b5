// What to do when a routed expert is not in the fast tier (--miss-policy fetch|cpu|auto).
//
// GPU (the design; the CUDA half plugs in here): fetch = copy it RAM -> VRAM and wait; cpu =
// compute it on the CPU from its host copy while the GPU goes on; auto = per miss, whichever
// choose_miss_action() predicts is sooner.
//
// CPU backend (implemented): the fast tier is the RAM slot cache and the slow tier the packed
// store on NVMe, and every expert is computed on the CPU. fetch = read the expert into a cache
// slot (evicting the policy's victim) and compute from there; cpu = stream it: read it into a
// staging slot outside the cache, compute, drop it, so a miss never evicts a cached expert;
// auto = admission control: fetch when a slot is free or the policy ranks the newcomer above its
// victim (LFU: more frequent), otherwise stream.
#pragma once

#include <cstdint>
#include <string>

namespace moe {

enum class MissPolicy : uint8_t { kFetch, kCpu, kAuto };
enum class MissAction : uint8_t { kFetch, kComputeOnHost };

// "fetch", "cpu", "auto"; throws moe::Error listing them otherwise.
MissPolicy parse_miss_policy(const std::string& name);
const char* miss_policy_name(MissPolicy p);

// The cost model of one miss on a GPU run, all times in seconds from now.
struct MissCost {
  uint64_t expert_bytes = 0;    // bytes of the quantized expert
  uint64_t expert_weights = 0;  // its weights (3 x hidden x intermediate)
  int64_t tokens = 1;           // rows routed to it
  double link_bytes_per_s = 0;  // host -> device (PCIe) bandwidth
  double copy_queue_s = 0;      // copies already queued ahead of this one on the copy stream
  double cpu_bytes_per_s = 0;   // CPU DRAM bandwidth for the expert's weights
  double cpu_flops = 0;         // CPU multiply-adds per second (2 flops each)
  double gpu_expert_s = 0;      // time the GPU needs for the expert once it is there
};
// Fetch when copy + GPU compute finishes first, else compute on the host (ties: fetch).
MissAction choose_miss_action(const MissCost& c);
// The two predicted completion times, for stats and tests.
double fetch_seconds(const MissCost& c);
double host_compute_seconds(const MissCost& c);

}  // namespace moe
