// StageCollectives (runtime/engine/stage_collectives.h) over two communicators: the stage's
// tensor-parallel group and the whole stage. Tensors on the CPU backend are handed to a host
// communicator directly; device tensors go to a device communicator (NCCL) directly, or through
// a host staging buffer to a host one (MPI with a GPU backend).
#pragma once

#include <vector>

#include "parallel/communicator.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/stage_collectives.h"

namespace moe::parallel {

// Bytes moved and time spent in the collectives, for the stats and the benchmarks.
struct CommCounters {
  uint64_t calls = 0;
  uint64_t bytes = 0;  // this rank's payload (the input size of each call)
  double seconds = 0;
};

class CommCollectives final : public StageCollectives {
 public:
  // References must outlive this object.
  CommCollectives(Communicator& tensor_group, Communicator& stage_group, Backend& backend);

  int size(CommGroup g) const override { return comm(g).size(); }
  int rank(CommGroup g) const override { return comm(g).rank(); }
  void all_reduce_sum(Tensor& x, CommGroup g) override;
  void all_gather(const Tensor& x, Tensor& out, CommGroup g) override;

  const CommCounters& counters() const { return counters_; }

 private:
  Communicator& comm(CommGroup g) const { return g == CommGroup::kTensor ? tensor_ : stage_; }

  Communicator& tensor_;
  Communicator& stage_;
  Backend& backend_;
  std::vector<float> staging_, staging_out_;
  CommCounters counters_;
};

// Sends / receives the first `rows` rows of an F32 activation tensor (a pipeline stage's hidden
// state), staging through host memory when the tensor and the communicator live apart.
void send_rows(Communicator& c, Backend& backend, const Tensor& x, int64_t rows, int peer, int tag,
               std::vector<float>& staging);
void recv_rows(Communicator& c, Backend& backend, Tensor& x, int64_t rows, int peer, int tag,
               std::vector<float>& staging);

}  // namespace moe::parallel
