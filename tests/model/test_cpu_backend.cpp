// CpuBackend behaviour that the model-level tests do not reach.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/qlinear_isa.h"
#include "kernels/cpu/qtile.h"
#include "kernels/quant/quantize.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

// A tensor whose mapped bytes start at an odd address (possible in a safetensors file whose
// writer did not pad the header) is copied to aligned memory with the same values.
TEST(CpuBackend, RealignsMisalignedWeights) {
  std::vector<float> values = {1.5f, -2.25f, 3.0f, 0.125f, -7.0f, 9.5f};
  std::vector<uint8_t> storage(values.size() * sizeof(float) + 8);
  uint8_t* odd = storage.data() + 1;
  std::memcpy(odd, values.data(), values.size() * sizeof(float));
  TensorView view{.name = "w",
                  .file = "f",
                  .dtype = DType::kF32,
                  .shape = {2, 3},
                  .data = odd,
                  .nbytes = values.size() * sizeof(float)};
  CpuBackend backend(1);
  Tensor t = backend.load_weight(view);
  EXPECT_EQ(backend.realigned_weights(), 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignof(float), 0u);
  EXPECT_EQ(t.rank, 2);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(1), 3);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.as<const float>()[i], values[i]);

  // Aligned data is used in place.
  TensorView aligned = view;
  aligned.data = values.data();
  EXPECT_EQ(backend.load_weight(aligned).data, values.data());
  EXPECT_EQ(backend.realigned_weights(), 1);
}

// A q4 weight of 40 x 128 quantized from random values (two full runs of 16 rows, 8 leftover).
struct QuantizedWeight {
  static constexpr int64_t N = 40, K = 128;
  QuantFormat f{QuantType::kQ4, 32};
  std::vector<uint8_t> bytes;
  QuantizedWeight() {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<float> w(static_cast<size_t>(N * K));
    for (float& v : w) v = nd(rng);
    bytes.resize(static_cast<size_t>(N) * quant_row_bytes(f, K));
    quantize_rows(w.data(), N, K, f, QuantizeOptions{}, bytes.data());
  }
  TensorView view() const {
    return TensorView{
        .name = "w", .file = "f", .shape = {N, K}, .data = bytes.data(), .nbytes = bytes.size(), .quant = f};
  }
};

// Where the kernels prefer kTile16 (qtile.h), load_weight hands out a tiled copy and leaves the
// mapped bytes alone; adopt_weight_in_place tiles in place; both equal qtile_pack. An embedding
// looked up in a tiled table (a tied LM head) reads the same rows as from the block layout.
TEST(CpuBackend, TilesQuantizedWeightsForItsKernels) {
  const QuantizedWeight q;
  const std::vector<uint8_t> original = q.bytes;
  CpuBackend backend(1);
  const Tensor t = backend.load_weight(q.view());
  EXPECT_EQ(q.bytes, original);
  std::vector<uint8_t> packed(q.bytes.size());
  cpu::qtile_pack(q.bytes.data(), q.f, q.N, q.K, packed.data());
  if (!cpu::qtile_preferred(q.f)) {
    GTEST_SKIP() << "the kernels on this machine (" << cpu::qisa_name(cpu::qisa_current())
                 << ") keep q4 in the block layout";
  }
  EXPECT_EQ(t.qlayout, QuantLayout::kTile16);
  EXPECT_EQ(backend.tiled_weights(), 1);
  EXPECT_EQ(0, std::memcmp(t.data, packed.data(), packed.size()));

  std::vector<uint8_t> slot = q.bytes;
  Tensor in_slot = t;
  in_slot.data = slot.data();
  in_slot.qlayout = QuantLayout::kRows;
  const Tensor adopted = backend.adopt_weight_in_place(in_slot);
  EXPECT_EQ(adopted.qlayout, QuantLayout::kTile16);
  EXPECT_EQ(adopted.data, slot.data());
  EXPECT_EQ(slot, packed);

  const int32_t ids_host[] = {0, 17, 33, 39};
  Tensor ids = backend.alloc(DType::kI32, {4});
  std::memcpy(ids.data, ids_host, sizeof(ids_host));
  Tensor out = backend.alloc(DType::kF32, {4, q.K});
  backend.embedding(ids, t, out);
  std::vector<float> want(static_cast<size_t>(q.K));
  for (int i = 0; i < 4; ++i) {
    dequantize_rows(q.bytes.data() + static_cast<size_t>(ids_host[i]) * quant_row_bytes(q.f, q.K), 1, q.K, q.f,
                    want.data());
    EXPECT_EQ(0, std::memcmp(want.data(), out.as<float>() + i * q.K, sizeof(float) * want.size()))
        << "id " << ids_host[i];
  }

  // Row offsets inside a run of 16 would land mid-tile: refused by name.
  EXPECT_NO_THROW(t.slice_rows(16, 24));
  EXPECT_THROW(t.slice_rows(8, 8), Error);
}

// Through the backend's linear, a tiled weight gives what qlinear over the block layout gives,
// up to f32 summation order: both quantize x alike (integer path), only the order of the float
// operations differs (qtile.h).
TEST(CpuBackend, TiledLinearAgreesWithBlockLayout) {
  const QuantizedWeight q;
  CpuBackend backend(2);
  const Tensor t = backend.load_weight(q.view());
  if (t.qlayout != QuantLayout::kTile16) GTEST_SKIP() << "q4 is not tiled on this machine: nothing to compare";
  Tensor rows = t;
  rows.data = const_cast<uint8_t*>(q.bytes.data());
  rows.qlayout = QuantLayout::kRows;
  std::mt19937 rng(6);
  std::normal_distribution<float> nd;
  Tensor x = backend.alloc(DType::kF32, {3, q.K});
  for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = nd(rng);
  Tensor y1 = backend.alloc(DType::kF32, {3, q.N}), y2 = backend.alloc(DType::kF32, {3, q.N});
  backend.linear(x, t, Tensor{}, y1);
  backend.linear(x, rows, Tensor{}, y2);
  for (int64_t i = 0; i < y1.numel(); ++i)
    EXPECT_NEAR(y1.as<float>()[i], y2.as<float>()[i], 1e-4 * (1.0 + std::fabs(y2.as<float>()[i]))) << i;
}

}  // namespace
}  // namespace moe
