// The packed store (runtime/io/packed_store.h PackedStore::open): parts manifest.json, dense.bin,
// experts.bin (an empty part: the file is absent). Opened without checksums (so the rest of the
// validation is reached), then, when that succeeds, with them; every tensor and expert is read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/io/packed_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = moe::fuzz::split_parts(moe::fuzz::as_view(data, size), 3);
  const auto dir = moe::fuzz::fresh_dir("store");
  moe::fuzz::write_file(dir / "manifest.json", parts[0]);
  if (!parts[1].empty()) moe::fuzz::write_file(dir / "dense.bin", parts[1]);
  if (!parts[2].empty()) moe::fuzz::write_file(dir / "experts.bin", parts[2]);
  for (bool verify : {false, true}) {
    try {
      const moe::PackedStore s = moe::PackedStore::open(dir, verify);
      for (const std::string& name : s.tensor_names()) {
        const moe::PackedTensor t = s.tensor(name);
        moe::fuzz::touch(t.data, t.bytes);
      }
      (void)s.experts().size();
      (void)s.source_config().dump();
    } catch (const moe::Error&) {
      return 0;
    }
  }
  return 0;
}
