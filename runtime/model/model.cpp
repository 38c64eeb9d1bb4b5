#include "runtime/model/model.h"

namespace moe {

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, Backend& backend, const ParallelLayout* layout) {
  ModelConfig config = load_model_config(dir);
  SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir);
  const ParallelLayout chosen = layout ? *layout : ParallelLayout::single(config.num_layers);
  std::unique_ptr<Model> m(new Model(std::move(config), std::move(checkpoint), chosen));
  m->weights_ = bind_weights(m->config_, m->checkpoint_, m->layout_, backend);
  return m;
}

}  // namespace moe
