// A loaded model: its config, its mapped checkpoint and its weights bound to one backend.
#pragma once

#include <filesystem>
#include <memory>

#include "runtime/backend/backend.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"
#include "runtime/model/weight_source.h"
#include "runtime/model/weights.h"

namespace moe {

class GgufSource;

class Model {
 public:
  // Reads a Hugging Face directory (config.json + safetensors), a packed store written by
  // `moe convert` (manifest.json; checksums verified when `verify`) or a GGUF file
  // (runtime/model/gguf_source.h), checks and binds every
  // tensor for `layout` (all layers on one process when null). Throws moe::Error with the file,
  // tensor and problem for anything malformed. Not movable: weights point into mapped files.
  // `experts`: ExpertBinding::kMapped when the offloading tiers serve the routed experts
  // (bind_weights).
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, Backend& backend,
                                     const ParallelLayout* layout = nullptr, bool verify = true,
                                     ExpertBinding experts = ExpertBinding::kResident);

  // The config of a Hugging Face directory, a packed store or a GGUF file, without opening the weights (what
  // a parallel layout is planned from before each rank loads its part).
  static ModelConfig read_config(const std::filesystem::path& dir);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ParallelLayout& layout() const { return layout_; }
  const WeightSource& source() const { return *source_; }
  // The packed store, when the model was loaded from one.
  const PackedStore* packed() const;
  // The GGUF file's source, when the model was loaded from one.
  const GgufSource* gguf() const;

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

 private:
  Model(ModelConfig config, std::unique_ptr<WeightSource> source, ParallelLayout layout)
      : config_(std::move(config)), source_(std::move(source)), layout_(layout) {}

  ModelConfig config_;
  std::unique_ptr<WeightSource> source_;
  ParallelLayout layout_;
  ModelWeights weights_;
};

}  // namespace moe
