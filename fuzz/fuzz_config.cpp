// config.json (runtime/model/config.h parse_model_config) and what is derived from it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const moe::ModelConfig c = moe::parse_model_config(std::string(moe::fuzz::as_view(data, size)), "config.json");
    (void)c.summary();
    (void)c.has_dense_layers();
    (void)c.q_width();
    (void)c.kv_width();
  } catch (const moe::Error&) {
  }
  return 0;
}
