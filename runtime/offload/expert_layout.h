// Where each routed expert sits in the packed store's experts.bin and what its three tensors
// look like, so an expert read into any slot can be viewed as MlpWeights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "runtime/backend/backend.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/config.h"
#include "runtime/offload/expert_key.h"

namespace moe {

struct ExpertPart {
  uint64_t rel = 0;  // byte offset inside the expert's extent
  uint64_t bytes = 0;
  std::vector<int64_t> shape;  // (I, H) for gate/up, (H, I) for down
  DType dtype = DType::kF32;
  std::optional<QuantFormat> quant;
  // A tensor over these bytes at `base` (the start of the expert's copy).
  Tensor view(uint8_t* base) const;
};

struct ExpertExtentInfo {
  uint64_t offset = 0;  // in experts.bin, multiple of 4096
  uint64_t bytes = 0;
  ExpertPart gate, up, down;
};

class ExpertLayout {
 public:
  // Reads the store's manifest for every MoE layer in [first, end) of `c`, keeping the experts
  // `owned(layer, expert)` accepts (all when empty: expert parallelism leaves out the other
  // ranks' experts, which this rank never loads or prefetches). Throws moe::Error naming the store
  // and expert when one is missing from the manifest or its tensors do not lie inside its extent.
  static ExpertLayout from_store(const PackedStore& store, const ModelConfig& c, int64_t first_layer, int64_t end_layer,
                                 const std::function<bool(int64_t, int64_t)>& owned = {});

  const ExpertExtentInfo& at(ExpertKey k) const;
  bool contains(ExpertKey k) const;
  int64_t num_experts() const { return experts_; }
  int64_t first_layer() const { return first_; }
  int64_t end_layer() const { return end_; }
  // Every (MoE layer, expert) in the range.
  int64_t count() const { return count_; }
  uint64_t largest_bytes() const { return largest_; }
  uint64_t total_bytes() const { return total_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  int64_t first_ = 0, end_ = 0, experts_ = 0, count_ = 0;
  uint64_t largest_ = 0, total_ = 0;
  std::vector<std::optional<ExpertExtentInfo>> info_;  // (layer - first) * experts + expert
};

}  // namespace moe
