// A loaded model: its config, its mapped checkpoint and its weights bound to one backend.
#pragma once

#include <filesystem>
#include <memory>

#include "runtime/backend/backend.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"

namespace moe {

class Model {
 public:
  // Reads config.json, maps the safetensors checkpoint, checks and binds every tensor for
  // `layout` (all layers on one process when null). Throws moe::Error with the file, tensor
  // and problem for anything malformed. Not movable: weights point into the mapped files.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, Backend& backend,
                                     const ParallelLayout* layout = nullptr);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ParallelLayout& layout() const { return layout_; }
  const SafetensorsCheckpoint& checkpoint() const { return checkpoint_; }

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

 private:
  Model(ModelConfig config, SafetensorsCheckpoint checkpoint, ParallelLayout layout)
      : config_(std::move(config)), checkpoint_(std::move(checkpoint)), layout_(layout) {}

  ModelConfig config_;
  SafetensorsCheckpoint checkpoint_;
  ParallelLayout layout_;
  ModelWeights weights_;
};

}  // namespace moe
