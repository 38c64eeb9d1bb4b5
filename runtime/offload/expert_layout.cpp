#include "runtime/offload/expert_layout.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/model/architecture.h"

namespace moe {

Tensor ExpertPart::view(uint8_t* base) const {
  Tensor t;
  t.data = base + rel;
  t.dtype = dtype;
  t.quant = quant;
  t.device = Device::kCpu;
  t.rank = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  return t;
}

namespace {

PackedTensor find_expert_tensor(const PackedStore& store, const ModelConfig& c, int64_t layer, int64_t e,
                                std::string_view proj) {
  // The arch's block name (Mixtral's block_sparse_moe), or transformers 5's `mlp`.
  for (const std::string& block : {std::string(c.arch->moe_block), std::string("mlp")}) {
    const std::string name = str_cat("model.layers.", layer, ".", block, ".experts.", e, ".", proj, ".weight");
    if (store.contains(name)) return store.tensor(name);
  }
  fail(store.dir().string(), "/manifest.json: expert ", layer, ".", e, " has no '", proj,
       "' tensor; offloading reads experts stored per expert by `moe convert`");
}

}  // namespace

ExpertLayout ExpertLayout::from_store(const PackedStore& store, const ModelConfig& c, int64_t first_layer,
                                      int64_t end_layer, const std::function<bool(int64_t, int64_t)>& owned) {
  ExpertLayout L;
  L.file_ = store.dir() / "experts.bin";
  L.first_ = first_layer;
  L.end_ = end_layer;
  L.experts_ = c.num_experts;
  L.info_.resize(static_cast<size_t>((end_layer - first_layer) * c.num_experts));
  for (const ExpertExtent& x : store.experts()) {
    if (x.layer < first_layer || x.layer >= end_layer || x.expert < 0 || x.expert >= c.num_experts) continue;
    if (owned && !owned(x.layer, x.expert)) continue;
    const PackedTensor parts[3] = {find_expert_tensor(store, c, x.layer, x.expert, c.arch->expert_gate),
                                   find_expert_tensor(store, c, x.layer, x.expert, c.arch->expert_up),
                                   find_expert_tensor(store, c, x.layer, x.expert, c.arch->expert_down)};
    // The extent starts at its first tensor: offsets inside it are relative to the lowest address.
    const uint8_t* base = std::min({parts[0].data, parts[1].data, parts[2].data});
    ExpertExtentInfo info{.offset = x.offset, .bytes = x.bytes, .gate = {}, .up = {}, .down = {}};
    ExpertPart* out[3] = {&info.gate, &info.up, &info.down};
    for (int i = 0; i < 3; ++i) {
      const PackedTensor& p = parts[i];
      *out[i] = ExpertPart{.rel = static_cast<uint64_t>(p.data - base),
                           .bytes = p.bytes,
                           .shape = p.shape,
                           .dtype = p.dtype,
                           .quant = p.quant};
      MOE_CHECK(out[i]->rel + p.bytes <= x.bytes, store.dir().string(), "/manifest.json: tensor '", p.name,
                "' does not lie inside expert ", x.layer, ".", x.expert, "'s extent of ", x.bytes, " bytes");
    }
    L.info_[static_cast<size_t>((x.layer - first_layer) * c.num_experts + x.expert)] = std::move(info);
    L.largest_ = std::max(L.largest_, x.bytes);
    L.total_ += x.bytes;
    ++L.count_;
  }
  for (int64_t l = first_layer; l < end_layer; ++l) {
    if (!c.layer_is_moe[static_cast<size_t>(l)]) continue;
    for (int64_t e = 0; e < c.num_experts; ++e)
      MOE_CHECK(
          (owned && !owned(l, e)) || L.info_[static_cast<size_t>((l - first_layer) * c.num_experts + e)].has_value(),
          store.dir().string(), "/manifest.json: no extent for expert ", l, ".", e, " in experts.bin");
  }
  return L;
}

bool ExpertLayout::contains(ExpertKey k) const {
  if (k.layer < first_ || k.layer >= end_ || k.expert < 0 || k.expert >= experts_) return false;
  return info_[static_cast<size_t>((k.layer - first_) * experts_ + k.expert)].has_value();
}

const ExpertExtentInfo& ExpertLayout::at(ExpertKey k) const {
  MOE_CHECK(contains(k), "expert ", k.layer, ".", k.expert, " is not in the packed store's experts.bin");
  return *info_[static_cast<size_t>((k.layer - first_) * experts_ + k.expert)];
}

}  // namespace moe
