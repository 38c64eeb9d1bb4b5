// What the forward pass needs from the other ranks of its pipeline stage under tensor and expert
// parallelism: sums of partial activations and gathers of sharded ones. An interface here, so
// runtime/ stays free of MPI and NCCL; parallel/ implements it over its communicators.
#pragma once

#include <cstdint>

#include "runtime/backend/tensor.h"

namespace moe {

// kTensor: the ranks of this stage that share this rank's experts and split its heads and widths
// (the tensor-parallel group). kStage: every rank of this stage (tensor x expert parallel).
enum class CommGroup : uint8_t { kTensor, kStage };

class StageCollectives {
 public:
  virtual ~StageCollectives() = default;
  virtual int size(CommGroup g) const = 0;
  virtual int rank(CommGroup g) const = 0;
  // x (F32, contiguous, on the forward pass's backend) = the sum of every group rank's x, in
  // place; every rank ends with the same bits.
  virtual void all_reduce_sum(Tensor& x, CommGroup g) = 0;
  // out = every group rank's x stacked in rank order: out viewed as (size * x.dim(0), ...)
  // holds rank r's x in rows [r * x.dim(0), (r + 1) * x.dim(0)).
  virtual void all_gather(const Tensor& x, Tensor& out, CommGroup g) = 0;
};

}  // namespace moe
