// Quantization recipes: how each kind of tensor is stored, as one option, e.g.
//   --quant attn=q4,experts=q2g16,router=f16,embed=q8,lm_head=q8
// or a preset name. Norm weights and biases are always kept as stored.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "runtime/model/architecture.h"

namespace moe {

// What a tensor is, for the recipe. Keys in recipe strings in parentheses.
enum class TensorKind : uint8_t {
  kAttention,     // q/k/v/o projections (attn)
  kRouter,        // router gate (router)
  kExpert,        // routed experts' gate/up/down (experts)
  kSharedExpert,  // shared expert and its gate (shared)
  kDenseMlp,      // dense-layer MLPs (dense)
  kEmbedding,     // token embedding (embed)
  kLmHead,        // output projection (lm_head)
  kNorm,          // RMSNorm weights, q/k norms: always kept
  kBias,          // projection biases: always kept
};

struct StorageChoice {
  enum class Mode : uint8_t { kKeep, kDense, kQuant };
  Mode mode = Mode::kKeep;
  DType dtype = DType::kF32;  // kDense: F32, F16 or BF16
  QuantFormat quant{};        // kQuant
  bool operator==(const StorageChoice&) const = default;
};

class QuantRecipe {
 public:
  // A preset name or "kind=format,...": kinds attn, router, experts, shared, dense, embed, lm_head,
  // and `all` (every quantizable kind); formats q8/q4/q3/q2 with optional gNN, f16, bf16, f32, keep.
  // Kinds not named are kept. Presets:
  //   q8, q4, q3, q2   : that format for every quantizable kind (router kept)
  //   mixed-4-2        : attn q4g64, experts q2g16, shared/dense q4g64 (the MoE-offloading paper's mix)
  //   mixed-4-3        : attn q4g64, experts q3g64, shared/dense q4g64
  // Throws moe::Error naming the bad part and listing what is accepted.
  static QuantRecipe parse(std::string_view spec);

  StorageChoice choice(TensorKind kind) const;
  std::string spec() const;  // canonical "attn=q4g64,experts=q2g16,..." (parse(spec()) == *this)
  bool operator==(const QuantRecipe&) const = default;

 private:
  std::map<TensorKind, StorageChoice> choices_;
};

// Which kind a checkpoint tensor is, by its name (per-expert or fused expert names both).
TensorKind classify_tensor(std::string_view name, const ArchSpec& arch);
std::string_view tensor_kind_name(TensorKind kind);

}  // namespace moe
