// The expert-offloading side of the engine (docs/offloading.md): its options, setting it up
// once the KV cache exists, and its lines in the stats block.
#pragma once

#include <cstdio>
#include <vector>

#include "launch/engine.h"
#include "runtime/offload/expert_key.h"

namespace moe::cli {

// Parses the offloading options (errors name the option) and refuses GPU tiers on a CPU run.
void check_offload_options(const EngineOptions& o);
// Offloading is on: --host-mem, or --gpu-mem on a GPU run (docs/offloading.md).
bool offload_requested(const EngineOptions& o);
// With --host-mem (and on a GPU run --gpu-mem): sizes the tiers (VRAM, RAM), places the profile's experts (--placement)
// and hands the offloader to the forward pass. Without it: nothing (every expert resident, as before).
void prepare_offload(Engine& e);
// The offloading lines of the stats block; writes --offload-stats when given.
void print_offload_stats(std::FILE* out, const Engine& e);

// A routing profile written by `moe profile`: experts by use count, most used first.
std::vector<ExpertKey> read_placement(const std::string& path);

}  // namespace moe::cli
