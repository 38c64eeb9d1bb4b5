// NumPy .npy (runtime/io/npy.h read_npy).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moe::fuzz::scratch_dir() / "array.npy";
  moe::fuzz::write_file(path, moe::fuzz::as_view(data, size));
  try {
    const moe::NpyArray a = moe::read_npy(path);
    uint64_t n = 1;
    for (int64_t d : a.shape)
      if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) __builtin_trap();
    if (n != a.data.size()) __builtin_trap();  // shape and data disagree
  } catch (const moe::Error&) {
  }
  return 0;
}
