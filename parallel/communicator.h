// One interface for the collectives and point-to-point transfers the parallel runtime needs,
// with four implementations that each own their handle (RAII) and keep their foreign headers out
// of this file: MPI (parallel/mpi_communicator.h), NCCL (parallel/nccl_communicator.h), TCP between
// workers started by hand (parallel/tcp_communicator.h) and an in-process one over threads for
// unit tests (parallel/thread_communicator.h).
//
// Buffers live where memory() says: host memory for MPI and threads, device memory (the
// communicator's CUDA device) for NCCL. Every rank of a communicator calls the collectives in
// the same order with the same sizes. Errors throw moe::Error naming the operation, the rank and
// the library's own message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moe::parallel {

enum class MemorySpace : uint8_t { kHost, kDevice };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi", "nccl", "tcp" or "threads".
  virtual std::string name() const = 0;
  virtual MemorySpace memory() const = 0;

  // data[0:count] = the sum over ranks, in place. Every rank ends with the same bits: the MPI
  // and thread implementations add the ranks' buffers in rank order (deterministic, and what
  // keeps replicated routers choosing the same experts on every rank).
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // recv[r * bytes : (r + 1) * bytes] = rank r's send[0:bytes], for every r.
  virtual void all_gather(const void* send, size_t bytes, void* recv) = 0;
  // data[0:bytes] = root's data[0:bytes] on every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Blocking point-to-point transfer; a send matches the recv on `peer` with the same tag
  // (NCCL has no tags: transfers between two ranks match in issue order there).
  virtual void send(const void* data, size_t bytes, int peer, int tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, int tag) = 0;
  virtual void barrier() = 0;
  // Stops every rank of the job (MPI_Abort, ncclCommAbort, or failing the other threads' next
  // call), after printing `why` on stderr.
  [[noreturn]] virtual void abort(int code, const std::string& why) = 0;
  // A communicator over the ranks that pass the same `color`, ordered by `key` (then by rank),
  // like MPI_Comm_split. Every rank of this communicator calls it.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

}  // namespace moe::parallel
