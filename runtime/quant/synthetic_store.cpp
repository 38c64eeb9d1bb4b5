#include "runtime/quant/synthetic_store.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "runtime/core/error.h"
#include "runtime/io/packed_store_writer.h"
#include "runtime/model/architecture.h"
#include "runtime/model/synthetic_rng.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

// Magnitude bound of write_synthetic_model's values for a tensor.
float value_range(const SyntheticTensor& t) {
  switch (t.fill) {
    case SyntheticTensor::Fill::kMatrix:
      return static_cast<float>(t.gain * std::sqrt(3.0 / static_cast<double>(t.shape.back())));
    case SyntheticTensor::Fill::kNorm:
    case SyntheticTensor::Fill::kBias: return 0.1f;
  }
  return 1.0f;
}

class StoreFiller {
 public:
  StoreFiller(const SyntheticModelSpec& spec, const QuantRecipe& recipe, PackedStoreWriter& w)
      : spec_(spec), recipe_(recipe), arch_(*find_architecture(spec.architecture)), w_(w), rng_(spec.seed) {}

  void write(const SyntheticTensor& t) {
    const StorageChoice c = recipe_.choice(classify_tensor(t.name, arch_));
    if (c.mode == StorageChoice::Mode::kQuant && t.shape.size() == 2) {
      write_quantized(t, c.quant);
    } else {
      write_dense(t, c.mode == StorageChoice::Mode::kDense ? c.dtype : spec_.dtype);
    }
    params_ += numel(t.shape);
  }
  int64_t params() const { return params_; }

 private:
  // Random codes, zero at mid-range, scale so values span write_synthetic_model's range.
  void write_quantized(const SyntheticTensor& t, QuantFormat f) {
    const int64_t rows = t.shape[0], cols = t.shape[1];
    MOE_CHECK(cols % f.group_size == 0, "synthetic store: tensor '", t.name, "' has rows of ", cols,
              " weights, not a multiple of ", quant_format_name(f), "'s group size ", f.group_size);
    const int maxcode = (1 << quant_bits(f.type)) - 1;
    const uint16_t scale = f32_to_f16(2.0f * value_range(t) / static_cast<float>(maxcode));
    const uint16_t zero = f32_to_f16(0.5f * static_cast<float>(maxcode));
    const size_t bb = quant_block_bytes(f), row_bytes = quant_row_bytes(f, cols);
    w_.begin_tensor(t.name, t.shape, DType::kF32, f, static_cast<uint64_t>(rows) * row_bytes);
    constexpr int64_t kChunkRows = 256;
    buf_.resize(static_cast<size_t>(kChunkRows) * row_bytes);
    for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows) {
      const int64_t n = std::min(kChunkRows, rows - r0);
      const size_t bytes = static_cast<size_t>(n) * row_bytes;
      rng_.fill(buf_.data(), bytes);
      for (size_t o = 0; o < bytes; o += bb) {
        std::memcpy(buf_.data() + o, &scale, 2);
        std::memcpy(buf_.data() + o + 2, &zero, 2);
      }
      w_.append(buf_.data(), bytes);
    }
    w_.end_tensor();
  }

  void write_dense(const SyntheticTensor& t, DType dtype) {
    MOE_CHECK(dtype_is_compute(dtype), "synthetic store: dtype ", dtype_name(dtype), " is not a weight dtype");
    const int64_t n = numel(t.shape);
    const auto elt = static_cast<size_t>(dtype_bits(dtype) / 8);
    w_.begin_tensor(t.name, t.shape, dtype, std::nullopt, static_cast<uint64_t>(n) * elt);
    constexpr int64_t kChunk = int64_t{1} << 20;
    buf_.resize(static_cast<size_t>(kChunk) * elt);
    const float range = value_range(t);
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
      const int64_t m = std::min(kChunk, n - i0);
      for (int64_t i = 0; i < m; ++i) {
        const float v = (t.fill == SyntheticTensor::Fill::kNorm ? 1.0f : 0.0f) + range * rng_.symmetric();
        uint8_t* p = buf_.data() + static_cast<size_t>(i) * elt;
        switch (compute_type(dtype)) {
          case ComputeType::kF32: std::memcpy(p, &v, 4); break;
          case ComputeType::kBF16: {
            const uint16_t h = f32_to_bf16(v);
            std::memcpy(p, &h, 2);
            break;
          }
          case ComputeType::kF16: {
            const uint16_t h = f32_to_f16(v);
            std::memcpy(p, &h, 2);
            break;
          }
        }
      }
      w_.append(buf_.data(), static_cast<size_t>(m) * elt);
    }
    w_.end_tensor();
  }

  const SyntheticModelSpec& spec_;
  const QuantRecipe& recipe_;
  const ArchSpec& arch_;
  PackedStoreWriter& w_;
  SyntheticRng rng_;
  std::vector<uint8_t> buf_;
  int64_t params_ = 0;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  MOE_CHECK(out.good(), path.string(), ": cannot write");
}

}  // namespace

SyntheticStoreStats write_synthetic_packed_store(const SyntheticModelSpec& spec, const QuantRecipe& recipe,
                                                 const fs::path& out, bool replace,
                                                 const std::function<void(int64_t, int64_t)>& progress) {
  const std::string config_json = synthetic_config_json(spec);  // checks the spec
  int64_t total = 0;
  for_each_synthetic_tensor(spec, [&](const SyntheticTensor& t) { total += numel(t.shape); });

  PackedStoreWriter w(out, replace);
  StoreFiller filler(spec, recipe, w);
  // Dense tensors first, then each routed expert's three back to back (as moe convert writes).
  for_each_synthetic_tensor(spec, [&](const SyntheticTensor& t) {
    if (t.expert >= 0) return;
    filler.write(t);
    if (progress) progress(filler.params(), total);
  });
  int64_t layer = -1, expert = -1;
  for_each_synthetic_tensor(spec, [&](const SyntheticTensor& t) {
    if (t.expert < 0) return;
    if (t.layer != layer || t.expert != expert) {
      if (expert >= 0) w.end_expert();
      w.begin_expert(t.layer, t.expert);
      layer = t.layer;
      expert = t.expert;
    }
    filler.write(t);
    if (progress) progress(filler.params(), total);
  });
  if (expert >= 0) w.end_expert();

  write_text(w.partial_dir() / "config.json", config_json + "\n");
  const nlohmann::json gen = {{"bos_token_id", spec.bos_token_id}, {"eos_token_id", spec.eos_token_id}};
  write_text(w.partial_dir() / "generation_config.json", gen.dump(2) + "\n");
  PackedManifestInfo info;
  info.recipe = recipe.spec();
  info.quantizer = {{"name", "random"},
                    {"note", "random codes, zero at mid-range: a synthetic model, not quantized from weights"}};
  info.source = nlohmann::ordered_json::object();
  info.source["dir"] = "";
  info.source["config"] = nlohmann::ordered_json::parse(config_json);
  info.created_by = str_cat("moe-runtime ", MOE_VERSION);
  SyntheticStoreStats stats{filler.params(), w.data_bytes(), static_cast<int64_t>(w.expert_count())};
  w.commit(info);
  return stats;
}

}  // namespace moe
