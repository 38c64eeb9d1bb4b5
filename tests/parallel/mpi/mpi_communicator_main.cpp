// The MPI Communicator's checks, run as `mpirun -np N moe_mpi_communicator_check` (ctest:
// parallel.mpi_communicator_np{1,2,3,4}). Not a gtest program: gtest_discover_tests cannot run a
// binary under mpirun. The same operations as tests/parallel/test_communicator.cpp, against
// references every rank computes alone (rank r's buffer comes from an RNG seeded with seed + r),
// once with the default chunk size and once with a tiny one that runs the chunked paths.
//
// Success: rank 0 prints "mpi communicator: all checks passed on N ranks" and every rank exits 0.
// Failure: the failing rank prints what went wrong and aborts the job (MPI_Abort, non-zero exit).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "parallel/mpi_communicator.h"
#include "runtime/core/error.h"
#include "tests/parallel/comm_test_data.h"

namespace moe::parallel {
namespace {

constexpr uint32_t kSeed = 20240601;

using test::random_bytes;
using test::random_floats;
using test::u;

// Throws with the check's text and where it ran.
#define CHECK_OR_THROW(cond, ...) MOE_CHECK(cond, "check failed: ", #cond, ": ", __VA_ARGS__)

void check_all_reduce(Communicator& comm, size_t count) {
  const int n = comm.size();
  std::vector<float> expected = random_floats(kSeed, count);  // ((b0 + b1) + b2) + ... in float
  for (int r = 1; r < n; ++r) {
    const std::vector<float> b = random_floats(kSeed + u(r), count);
    for (size_t i = 0; i < count; ++i) expected[i] += b[i];
  }
  std::vector<float> data = random_floats(kSeed + u(comm.rank()), count);
  comm.all_reduce_sum(data.data(), count);
  CHECK_OR_THROW(std::memcmp(data.data(), expected.data(), count * sizeof(float)) == 0, "all_reduce_sum of ", count,
                 " floats differs from the rank-order float sum");
  // Identical bits on every rank, seen directly.
  std::vector<float> all(count * static_cast<size_t>(n));
  comm.all_gather(data.data(), count * sizeof(float), all.data());
  for (int r = 0; r < n; ++r) {
    CHECK_OR_THROW(std::memcmp(all.data() + static_cast<size_t>(r) * count, data.data(), count * sizeof(float)) == 0,
                   "all_reduce_sum: rank ", r, " has other bits");
  }
}

void check_all_gather(Communicator& comm, size_t bytes) {
  const int n = comm.size();
  const std::vector<uint8_t> mine = random_bytes(kSeed + u(comm.rank()), bytes);
  std::vector<uint8_t> all(bytes * static_cast<size_t>(n), 0xee);
  comm.all_gather(mine.data(), bytes, all.data());
  for (int r = 0; r < n; ++r) {
    const std::vector<uint8_t> theirs = random_bytes(kSeed + u(r), bytes);
    CHECK_OR_THROW(std::memcmp(all.data() + static_cast<size_t>(r) * bytes, theirs.data(), bytes) == 0,
                   "all_gather of ", bytes, " bytes: slot ", r, " is wrong");
  }
}

void check_broadcast(Communicator& comm, size_t bytes) {
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<uint8_t> data = random_bytes(kSeed + u(comm.rank()), bytes);
    comm.broadcast(data.data(), bytes, root);
    CHECK_OR_THROW(data == random_bytes(kSeed + u(root), bytes), "broadcast of ", bytes, " bytes from root ", root);
  }
}

// Small messages out of tag order: relies on MPI buffering them (eager protocol; a few bytes
// always are), since MPI_Send may block until its receive is posted.
void check_ring_out_of_order(Communicator& comm) {
  const int n = comm.size();
  const int next = (comm.rank() + 1) % n;
  const int prev = (comm.rank() + n - 1) % n;
  const uint32_t me = u(comm.rank());
  const uint32_t from = u(prev);
  const std::vector<uint8_t> a = random_bytes(100 * me + 1, 16);
  const std::vector<uint8_t> b = random_bytes(100 * me + 2, 40);
  const std::vector<uint8_t> c = random_bytes(100 * me + 3, 16);
  comm.send(a.data(), a.size(), next, 1);
  comm.send(b.data(), b.size(), next, 2);
  comm.send(c.data(), c.size(), next, 1);
  std::vector<uint8_t> got_a(16);
  std::vector<uint8_t> got_b(40);
  std::vector<uint8_t> got_c(16);
  comm.recv(got_b.data(), got_b.size(), prev, 2);
  comm.recv(got_a.data(), got_a.size(), prev, 1);
  comm.recv(got_c.data(), got_c.size(), prev, 1);
  CHECK_OR_THROW(got_a == random_bytes(100 * from + 1, 16), "ring: first tag-1 message from rank ", prev);
  CHECK_OR_THROW(got_b == random_bytes(100 * from + 2, 40), "ring: tag-2 message from rank ", prev);
  CHECK_OR_THROW(got_c == random_bytes(100 * from + 3, 16), "ring: second tag-1 message from rank ", prev);
  // An empty message still matches.
  comm.send(nullptr, 0, next, 3);
  comm.recv(nullptr, 0, prev, 3);
}

// A message too big to be buffered: rank 0 sends first, everyone else receives first, so the
// ring completes as a chain. (One rank would send to itself and wait forever: skipped.)
void check_ring_large(Communicator& comm, size_t bytes) {
  const int n = comm.size();
  if (n == 1) return;
  const int next = (comm.rank() + 1) % n;
  const int prev = (comm.rank() + n - 1) % n;
  const std::vector<uint8_t> mine = random_bytes(kSeed + 7 * u(comm.rank()), bytes);
  std::vector<uint8_t> got(bytes);
  if (comm.rank() == 0) {
    comm.send(mine.data(), bytes, next, 11);
    comm.recv(got.data(), bytes, prev, 11);
  } else {
    comm.recv(got.data(), bytes, prev, 11);
    comm.send(mine.data(), bytes, next, 11);
  }
  CHECK_OR_THROW(got == random_bytes(kSeed + 7 * u(prev), bytes), "ring of ", bytes, " bytes from rank ", prev);
}

void check_split(Communicator& comm) {
  const int n = comm.size();
  const int me = comm.rank();
  std::unique_ptr<Communicator> half = comm.split(me % 2, -me);  // keys reverse the order
  CHECK_OR_THROW(half != nullptr, "split(even/odd) gave no communicator");
  std::vector<int> members;  // same parity, descending
  for (int r = n - 1; r >= 0; --r) {
    if (r % 2 == me % 2) members.push_back(r);
  }
  CHECK_OR_THROW(half->size() == static_cast<int>(members.size()), "split: size ", half->size());
  CHECK_OR_THROW(members[static_cast<size_t>(half->rank())] == me, "split: rank ", half->rank());
  std::vector<int> gathered(members.size());
  half->all_gather(&me, sizeof(int), gathered.data());
  CHECK_OR_THROW(gathered == members, "split: members in the wrong order");
  float v = static_cast<float>(me);
  half->all_reduce_sum(&v, 1);
  float expected = 0.0f;
  for (int r : members) expected += static_cast<float>(r);
  CHECK_OR_THROW(v == expected, "split: sum ", v, " != ", expected);
  std::unique_ptr<Communicator> some = comm.split(me == 0 ? -1 : 0, me);
  if (me == 0) {
    CHECK_OR_THROW(some == nullptr, "split: a negative color still gave a communicator");
  } else {
    CHECK_OR_THROW(some != nullptr && some->size() == n - 1 && some->rank() == me - 1,
                   "split: colour 0 without rank 0");
  }
}

void check_all(MpiCommunicator& comm, size_t chunk_bytes) {
  comm.set_chunk_bytes(chunk_bytes);
  const bool tiny = chunk_bytes < 4096;
  for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) check_all_reduce(comm, count);
  check_all_reduce(comm, tiny ? 3000 : size_t{1} << 20);
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{37}, size_t{4096}}) check_all_gather(comm, bytes);
  check_broadcast(comm, 0);
  check_broadcast(comm, 100);
  check_broadcast(comm, tiny ? 5000 : size_t{3} << 20);
  check_ring_out_of_order(comm);
  check_ring_large(comm, tiny ? 5000 : size_t{4} << 20);
  check_split(comm);
  for (int i = 0; i < 5; ++i) comm.barrier();
}

}  // namespace
}  // namespace moe::parallel

int main(int argc, char** argv) {
  using namespace moe::parallel;
  try {
    MpiSession session(&argc, &argv);
    std::unique_ptr<MpiCommunicator> comm = MpiCommunicator::world();
    try {
      if (comm->name() != "mpi" || comm->memory() != MemorySpace::kHost) throw moe::Error("wrong name() or memory()");
      check_all(*comm, comm->chunk_bytes());
      check_all(*comm, 60);  // not a multiple of the ranks' float rows: uneven chunks
      comm->barrier();
    } catch (const std::exception& e) {
      comm->abort(1, std::string("mpi communicator check failed: ") + e.what());
    }
    if (comm->rank() == 0) std::printf("mpi communicator: all checks passed on %d ranks\n", comm->size());
    const int launched = MpiSession::launched_under_mpi();
    if (comm->rank() == 0 && !launched) std::printf("(not launched by mpirun: singleton MPI)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi communicator: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
