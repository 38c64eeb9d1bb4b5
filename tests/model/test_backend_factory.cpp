// make_backend / parse_device: the --device strings, and the errors a machine without CUDA (or
// a build without it) gives. Runs everywhere; the CUDA backend itself is tested under tests/gpu.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cpu_backend.h"

namespace moe {
namespace {

TEST(BackendFactory, ParsesDeviceStrings) {
  EXPECT_EQ(parse_device("cpu").kind, Device::kCpu);
  EXPECT_EQ(parse_device("cuda").kind, Device::kCuda);
  EXPECT_EQ(parse_device("cuda").index, 0);
  EXPECT_EQ(parse_device("cuda:3").index, 3);
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1x", "CPU", ""})
    EXPECT_ERROR_CONTAINS(parse_device(bad), {"--device", "expected cpu, cuda or cuda:N"});
}

TEST(BackendFactory, MakesTheCpuBackend) {
  const std::unique_ptr<Backend> b = make_backend("cpu", 1);
  ASSERT_NE(dynamic_cast<CpuBackend*>(b.get()), nullptr);
  EXPECT_EQ(static_cast<CpuBackend*>(b.get())->threads(), 1);
}

TEST(BackendFactory, CudaWithoutCudaSaysWhy) {
  if (!cuda_backend_built()) {
    EXPECT_ERROR_CONTAINS(make_backend("cuda", 0), {"--device cuda", "this build has no CUDA"});
    return;
  }
  std::unique_ptr<Backend> b;
  try {
    b = make_backend("cuda:0", 0);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda:0: no CUDA device"), std::string::npos) << e.what();
    return;
  }
  EXPECT_NE(b->name().find("cuda:0"), std::string::npos) << b->name();
  EXPECT_ERROR_CONTAINS(make_backend("cuda:999", 0), {"--device cuda:999", "no CUDA device 999"});
}

}  // namespace
}  // namespace moe
