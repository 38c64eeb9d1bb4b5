// One safetensors file (runtime/io/safetensors.h): open, validate, view every tensor.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moe::fuzz::scratch_dir() / "model.safetensors";
  moe::fuzz::write_file(path, moe::fuzz::as_view(data, size));
  try {
    const moe::SafetensorsFile f = moe::SafetensorsFile::open(path);
    for (const moe::SafetensorsEntry& e : f.entries()) {
      const moe::TensorView v = f.view(e.name);
      moe::fuzz::touch(v.data, v.nbytes);
      (void)v.numel();
    }
    (void)f.find("missing");
  } catch (const moe::Error&) {
  }
  return 0;
}
