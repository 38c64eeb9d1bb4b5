#include "runtime/model/model.h"

#include "runtime/model/gguf_source.h"

namespace moe {

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, Backend& backend, const ParallelLayout* layout,
                                   bool verify, ExpertBinding experts) {
  ModelConfig config;
  std::unique_ptr<WeightSource> source;
  if (is_gguf_model(dir)) {
    auto file = std::make_shared<const GgufFile>(GgufFile::open(dir));
    config = gguf_model_config(*file);
    source = std::make_unique<GgufSource>(std::move(file), config);
  } else if (PackedStore::is_packed(dir)) {
    PackedStore store = PackedStore::open(dir, verify);
    config = parse_model_config(store.source_config().dump(), dir / "manifest.json");
    source = std::make_unique<PackedSource>(std::move(store));
  } else {
    config = load_model_config(dir);
    source = std::make_unique<SafetensorsSource>(SafetensorsCheckpoint::open(dir));
  }
  const ParallelLayout chosen = layout ? *layout : ParallelLayout::single(config.num_layers);
  std::unique_ptr<Model> m(new Model(std::move(config), std::move(source), chosen));
  m->weights_ = bind_weights(m->config_, *m->source_, m->layout_, backend, experts);
  return m;
}

ModelConfig Model::read_config(const std::filesystem::path& dir) {
  if (is_gguf_model(dir)) return gguf_model_config(GgufFile::open(dir));
  if (!PackedStore::is_packed(dir)) return load_model_config(dir);
  const PackedStore store = PackedStore::open(dir, /*verify=*/false);
  return parse_model_config(store.source_config().dump(), dir / "manifest.json");
}

const GgufSource* Model::gguf() const {
  return dynamic_cast<const GgufSource*>(source_.get());
}

const PackedStore* Model::packed() const {
  const auto* p = dynamic_cast<const PackedSource*>(source_.get());
  return p ? &p->store() : nullptr;
}

}  // namespace moe
