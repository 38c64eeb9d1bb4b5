// The NCCL Communicator: owns an ncclComm_t and a CUDA stream on one device. nccl.h and
// cuda_runtime.h stay in nccl_communicator.cpp (pimpl), so the rest of the tree never sees them.
//
// Contracts:
// - Buffers are device memory on device() (memory() is kDevice).
// - Every operation is enqueued on the communicator's own stream and then synchronised on it:
//   when the call returns, the data is in place (simple and correct; no overlap with compute).
// - Every NCCL call is checked (MOE_NCCL_CHECK in the .cpp) and every CUDA call too; failures
//   throw moe::Error naming the call, the rank and ncclGetErrorString / ncclGetLastError
//   (cudaGetErrorString for CUDA).
// - all_reduce_sum is ncclAllReduce(ncclSum): every rank ends with the same bits (the reduced
//   value is computed once and then distributed), but the order of the additions is NCCL's, not
//   rank order, so the result may differ in the last bits from the MPI and thread implementations.
// - send/recv are ncclSend/ncclRecv: NCCL has no tags, the tag is ignored, and transfers between
//   two ranks match in issue order. A send waits for its recv (each call synchronises), so order
//   them as for a rendezvous protocol.
// - barrier() is an all-reduce of one float. split() is ncclCommSplit (NCCL >= 2.18).
// - abort() prints why, ncclCommAbort()s and ends the process with std::_Exit(code); the other
//   ranks of the job are ended by the launcher (mpirun ends the job when a rank exits non-zero).
#pragma once

#include <memory>
#include <string>

#include "parallel/communicator.h"

namespace moe::parallel {

class NcclCommunicator final : public Communicator {
 public:
  // A communicator over the ranks of `bootstrap` (same ranks, same order) on CUDA device
  // `device`. Rank 0 of `bootstrap` makes the ncclUniqueId and broadcasts it over `bootstrap`
  // (which must be a host-memory communicator: MPI in practice), then every rank calls
  // ncclCommInitRank. Every rank of `bootstrap` calls it.
  static std::unique_ptr<NcclCommunicator> create(Communicator& bootstrap, int device);
  ~NcclCommunicator() override;  // ncclCommDestroy, then the stream and scratch are freed
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }
  MemorySpace memory() const override { return MemorySpace::kDevice; }
  int device() const { return device_; }

  void all_reduce_sum(float* data, size_t count) override;
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void barrier() override;
  [[noreturn]] void abort(int code, const std::string& why) override;
  // ncclCommSplit; a negative color is NCCL_SPLIT_NOCOLOR: that rank gets nullptr. The new
  // communicator runs on the same device with its own stream.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  struct Impl;  // ncclComm_t, cudaStream_t, a one-float device scratch for barrier()
  NcclCommunicator(int rank, int size, int device);
  // The unique id from bootstrap rank 0, then ncclCommInitRank and init_resources().
  void connect(Communicator& bootstrap);
  // Makes the stream and the scratch on device_ (impl_->comm is already set).
  void init_resources();
  // Waits for the stream, then checks the communicator for an asynchronous NCCL error.
  void synchronize(const char* op);

  std::unique_ptr<Impl> impl_;
  int rank_;
  int size_;
  int device_;
};

}  // namespace moe::parallel
