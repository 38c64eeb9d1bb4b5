// A sharded safetensors checkpoint (runtime/io/safetensors.h SafetensorsCheckpoint): part 0 is
// model.safetensors.index.json, parts 1..n the shards model-0000k-of-0000n.safetensors. An input
// without separators is a single model.safetensors.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = moe::fuzz::split_parts(moe::fuzz::as_view(data, size), 1);
  const auto dir = moe::fuzz::fresh_dir("checkpoint");
  if (parts.size() == 1) {
    moe::fuzz::write_file(dir / "model.safetensors", parts[0]);
  } else {
    moe::fuzz::write_file(dir / "model.safetensors.index.json", parts[0]);
    const size_t n = parts.size() - 1;
    for (size_t k = 1; k < parts.size(); ++k) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k, n);
      moe::fuzz::write_file(dir / name, parts[k]);
    }
  }
  try {
    const moe::SafetensorsCheckpoint c = moe::SafetensorsCheckpoint::open(dir);
    for (const std::string& name : c.tensor_names()) {
      const moe::TensorView v = c.tensor(name);
      moe::fuzz::touch(v.data, v.nbytes);
    }
    (void)c.total_bytes();
    (void)c.contains("missing");
  } catch (const moe::Error&) {
  }
  return 0;
}
