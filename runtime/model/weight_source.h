// Where a model's tensors come from: a Hugging Face safetensors checkpoint, or our packed store
// (runtime/io/packed_store.h) with quantized tensors. bind_weights reads through this.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/io/packed_store.h"
#include "runtime/io/safetensors.h"
#include "runtime/io/tensor_view.h"

namespace moe {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool contains(std::string_view name) const = 0;
  // Throws moe::Error naming the source and the tensor when absent.
  virtual TensorView tensor(std::string_view name) const = 0;
  // The directory, for messages.
  virtual const std::filesystem::path& dir() const = 0;
};

class SafetensorsSource final : public WeightSource {
 public:
  explicit SafetensorsSource(SafetensorsCheckpoint checkpoint) : ckpt_(std::move(checkpoint)) {}
  bool contains(std::string_view name) const override { return ckpt_.contains(name); }
  TensorView tensor(std::string_view name) const override { return ckpt_.tensor(name); }
  const std::filesystem::path& dir() const override { return ckpt_.dir(); }
  const SafetensorsCheckpoint& checkpoint() const { return ckpt_; }

 private:
  SafetensorsCheckpoint ckpt_;
};

class PackedSource final : public WeightSource {
 public:
  explicit PackedSource(PackedStore store) : store_(std::move(store)) {}
  bool contains(std::string_view name) const override { return store_.contains(name); }
  TensorView tensor(std::string_view name) const override;
  const std::filesystem::path& dir() const override { return store_.dir(); }
  const PackedStore& store() const { return store_; }

 private:
  PackedStore store_;
};

}  // namespace moe
