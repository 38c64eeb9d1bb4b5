// Where the forward pass gets a routed expert's weights when the experts are not all resident
// (runtime/offload: the RAM tier over the packed store on NVMe; later the VRAM tier). Without a
// provider the Transformer uses ModelWeights' experts directly, exactly as before.
//
// The forward pass calls, per step: begin_step; per MoE layer: begin_layer with the experts the
// router chose (ascending), then acquire/release around each expert's SwiGLU, in that order;
// (optionally layer_input / computed_output, below); end_layer after every layer (MoE or not) with the residual stream,
// which is where speculative prefetch looks ahead; end_step. Layer numbers are global. All calls come from the thread
// that runs the forward pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/backend/backend.h"

namespace moe {

class ExpertProvider {
 public:
  virtual ~ExpertProvider() = default;
  virtual void begin_step(int64_t n_tokens) = 0;
  // The router of `layer` chose `experts` (distinct, ascending); loads may start now.
  virtual void begin_layer(int64_t layer, std::span<const int32_t> experts) = 0;
  // The expert's weights, ready for the backend's ops; waits for its load if it must. Valid
  // until release(). Throws moe::Error (naming the file, expert, offset and bytes) when the load
  // failed.
  virtual MlpWeights acquire(int64_t layer, int32_t expert) = 0;
  virtual void release(int64_t layer, int32_t expert) = 0;
  // Optional, called right after begin_layer: the layer's normalised input xn (n_tokens, H) and,
  // indexed by expert, the token rows routed to it. A provider that computes some experts itself
  // (on the CPU from their host copy while the device computes the others: the GPU tier's
  // --miss-policy cpu/auto) starts them here.
  virtual void layer_input(int64_t layer, const Tensor& xn, std::span<const std::vector<int32_t>> rows) {
    (void)layer, (void)xn, (void)rows;
  }
  // Optional: when the provider computed `expert` itself, writes its output rows y (m, H) (in the
  // order of its routed rows) and returns true; the forward pass then skips gather, acquire, SwiGLU
  // and release for it and scatter-adds y as for any expert, in the same (ascending) order.
  virtual bool computed_output(int64_t layer, int32_t expert, Tensor& y) {
    (void)layer, (void)expert, (void)y;
    return false;
  }
  // After `layer`: hidden (n_tokens, H) is the residual stream entering the next layer.
  virtual void end_layer(int64_t layer, const Tensor& hidden) = 0;
  // Optional, before begin_step: the previous pipeline stage sent its residual stream after its
  // global layer `after_layer` ahead of the step's activations (parallel/stage_pass.h: cross-device
  // speculative prefetch). A provider that prefetches predicts the coming step's first layers
  // from it now, so their loads overlap the rest of the previous stage's work.
  virtual void hint(int64_t after_layer, const Tensor& hidden) { (void)after_layer, (void)hidden; }
  virtual void end_step() = 0;
};

}  // namespace moe
