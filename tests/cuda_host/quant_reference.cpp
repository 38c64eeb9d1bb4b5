#include "quant_reference.h"

#include "kernels/common/dtype.h"
#include "kernels/quant/quantize.h"

namespace moe::test {
namespace {

QuantFormat format(int bits, int group) {
  const QuantType t = bits == 8   ? QuantType::kQ8
                      : bits == 4 ? QuantType::kQ4
                      : bits == 3 ? QuantType::kQ3
                                  : QuantType::kQ2;
  return QuantFormat{t, group};
}

}  // namespace

std::vector<uint8_t> quantize_stored(const std::vector<float>& w, int64_t N, int64_t K, int bits, int group) {
  const QuantFormat f = format(bits, group);
  std::vector<uint8_t> q(quant_row_bytes(f, K) * static_cast<size_t>(N), uint8_t{0});
  QuantizeOptions o;
  o.quantizer = Quantizer::kRtn;
  quantize_rows(w.data(), N, K, f, o, q.data());
  return q;
}

std::vector<float> dequantize_stored(const std::vector<uint8_t>& q, int64_t N, int64_t K, int bits, int group) {
  std::vector<float> out(static_cast<size_t>(N * K), 0.0f);
  dequantize_rows(q.data(), N, K, format(bits, group), out.data());
  return out;
}

uint16_t to_f16(float f) {
  return f32_to_f16(f);
}
uint16_t to_bf16(float f) {
  return f32_to_bf16(f);
}
float from_f16(uint16_t h) {
  return f16_to_f32(h);
}
float from_bf16(uint16_t h) {
  return bf16_to_f32(h);
}

}  // namespace moe::test
