// The MPI Communicator, and the RAII owner of MPI itself. <mpi.h> stays in mpi_communicator.cpp:
// the communicator handle lives behind a pimpl, so runtime/ and the rest never see MPI headers.
//
// Contracts:
// - Every MPI call is checked (MOE_MPI_CHECK in the .cpp) and the communicators run with
//   MPI_ERRORS_RETURN, so a failure throws moe::Error naming the call, the world rank and
//   MPI_Error_string's text instead of killing the job from inside MPI.
// - all_reduce_sum is an MPI_Allgather of the buffers followed by a local sum in rank order, not
//   MPI_Allreduce: MPI_Allreduce promises neither an order of the additions nor (for some
//   algorithms) the same bits on every rank, and replicated routers on different ranks must
//   choose the same experts. The cost is size x count floats of traffic and memory per chunk
//   (chunked, see set_chunk_bytes); fine for the hidden-state sized buffers it is used for.
// - Transfers larger than chunk_bytes() (INT_MAX rounded down by default: MPI counts are int) are
//   split into several MPI calls of at most that size, identically on every rank.
// - send() is MPI_Send: blocking, and it may wait for the matching recv (large messages always
//   do), so two ranks that both send first can deadlock; order sends and receives accordingly.
// - Any thread may call MPI, one at a time (MPI_THREAD_SERIALIZED): `moe serve` loads on one
//   thread and steps the batch engine on another.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "parallel/communicator.h"

namespace moe::parallel {

// Owns MPI's lifetime: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialised,
// MPI_Finalize at destruction when this session initialised it. One per process, made on the
// thread that will make every MPI call; destroy every MpiCommunicator before it.
class MpiSession {
 public:
  // argc/argv may be null; MPI may remove its own arguments from them.
  explicit MpiSession(int* argc = nullptr, char*** argv = nullptr);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // True when this process was started by mpirun/mpiexec or srun (OMPI_COMM_WORLD_SIZE,
  // PMI_SIZE or PMIX_RANK in the environment). Reads the environment only: MPI is not touched.
  static bool launched_under_mpi();

 private:
  bool initialised_here_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  // A duplicate of MPI_COMM_WORLD (so our messages never match anyone else's), with
  // MPI_ERRORS_RETURN. Needs a live MpiSession (or MPI initialised by someone else).
  static std::unique_ptr<MpiCommunicator> world();
  ~MpiCommunicator() override;  // MPI_Comm_free, unless MPI is already finalised
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  MemorySpace memory() const override { return MemorySpace::kHost; }

  void all_reduce_sum(float* data, size_t count) override;
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void barrier() override;
  // Prints `why` on stderr and calls MPI_Abort on this communicator (which ends every rank of the
  // job under Open MPI).
  [[noreturn]] void abort(int code, const std::string& why) override;
  // MPI_Comm_split. A negative color is MPI_UNDEFINED: that rank gets nullptr. The new
  // communicator inherits this one's chunk_bytes().
  std::unique_ptr<Communicator> split(int color, int key) override;

  // The most bytes one MPI call carries (all_reduce_sum: the most bytes of the gathered buffer,
  // size x chunk). Every rank must set the same value. Tests lower it to run the chunked paths.
  size_t chunk_bytes() const { return chunk_bytes_; }
  void set_chunk_bytes(size_t bytes);

 private:
  struct Impl;  // holds the MPI_Comm
  explicit MpiCommunicator(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 0;
  size_t chunk_bytes_;
};

}  // namespace moe::parallel
