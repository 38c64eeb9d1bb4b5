#include "parallel/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

// The world rank for error messages, or -1 when MPI is not running (before init, after finalize).
int world_rank_or_minus_one() {
  int initialised = 0;
  int finalised = 0;
  if (MPI_Initialized(&initialised) != MPI_SUCCESS || !initialised) return -1;
  if (MPI_Finalized(&finalised) != MPI_SUCCESS || finalised) return -1;
  int rank = -1;
  if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS) return -1;
  return rank;
}

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof(text), "MPI error %d", code);
  const char* base = std::strrchr(file, '/');
  fail(call, " failed on MPI rank ", world_rank_or_minus_one(), " (", base ? base + 1 : file, ":", line, "): ", text);
}

}  // namespace
}  // namespace moe::parallel

// The one way MPI calls are checked: throws moe::Error("<call> failed on MPI rank R (file:line):
// <MPI_Error_string>"). Works because every communicator runs with MPI_ERRORS_RETURN.
#define MOE_MPI_CHECK(call)                                                                                   \
  do {                                                                                                        \
    const int moe_mpi_rc_ = (call);                                                                           \
    if (moe_mpi_rc_ != MPI_SUCCESS) ::moe::parallel::throw_mpi_error(moe_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)

namespace moe::parallel {
namespace {

constexpr size_t kDefaultChunkBytes = size_t{1} << 30;  // under INT_MAX: MPI counts are int
static_assert(kDefaultChunkBytes <= static_cast<size_t>(INT_MAX));

int as_count(size_t n) {
  return static_cast<int>(n);
}  // callers keep n <= chunk_bytes <= INT_MAX

}  // namespace

// ---- MpiSession ----------------------------------------------------------------------------------

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialised = 0;
  MOE_MPI_CHECK(MPI_Initialized(&initialised));
  if (initialised) return;
  int provided = 0;
  MOE_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  initialised_here_ = true;
  // The world communicator reports errors instead of aborting, like the ones we make.
  MOE_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    initialised_here_ = false;
    fail("MPI_Init_thread: MPI provides thread level ", provided, ", below MPI_THREAD_SERIALIZED");
  }
}

MpiSession::~MpiSession() {
  if (!initialised_here_) return;
  int finalised = 0;
  if (MPI_Finalized(&finalised) == MPI_SUCCESS && !finalised) MPI_Finalize();  // nothing to do on failure here
}

bool MpiSession::launched_under_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

// ---- MpiCommunicator -----------------------------------------------------------------------------

// Owns the MPI_Comm: freed here, so a constructor that throws after taking it does not leak it.
struct MpiCommunicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (comm == MPI_COMM_NULL) return;
    int finalised = 0;
    if (MPI_Finalized(&finalised) == MPI_SUCCESS && !finalised) MPI_Comm_free(&comm);  // noexcept: ignore failure
  }
};

MpiCommunicator::MpiCommunicator(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), chunk_bytes_(kDefaultChunkBytes) {
  MOE_MPI_CHECK(MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN));
  MOE_MPI_CHECK(MPI_Comm_rank(impl_->comm, &rank_));
  MOE_MPI_CHECK(MPI_Comm_size(impl_->comm, &size_));
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world() {
  int initialised = 0;
  MOE_MPI_CHECK(MPI_Initialized(&initialised));
  MOE_CHECK(initialised, "MpiCommunicator::world: MPI is not initialised (make an MpiSession first)");
  auto impl = std::make_unique<Impl>();
  MOE_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &impl->comm));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(std::move(impl)));
}

MpiCommunicator::~MpiCommunicator() = default;

void MpiCommunicator::set_chunk_bytes(size_t bytes) {
  MOE_CHECK(bytes >= sizeof(float) && bytes <= static_cast<size_t>(INT_MAX),
            "MpiCommunicator::set_chunk_bytes: ", bytes, " is outside [", sizeof(float), ", ", INT_MAX, "]");
  chunk_bytes_ = bytes;
}

void MpiCommunicator::all_reduce_sum(float* data, size_t count) {
  // Rank r's chunk lands at gathered[r * n]; the sum runs over r in order, in float, so every rank
  // computes the same expression on the same inputs.
  const size_t ranks = static_cast<size_t>(size_);
  const size_t per_chunk = std::max<size_t>(1, chunk_bytes_ / (ranks * sizeof(float)));
  std::vector<float> gathered(ranks * std::min(per_chunk, count));
  for (size_t begin = 0; begin < count; begin += per_chunk) {
    const size_t n = std::min(per_chunk, count - begin);
    MOE_MPI_CHECK(
        MPI_Allgather(data + begin, as_count(n), MPI_FLOAT, gathered.data(), as_count(n), MPI_FLOAT, impl_->comm));
    for (size_t i = 0; i < n; ++i) {
      float sum = gathered[i];
      for (size_t r = 1; r < ranks; ++r) sum += gathered[r * n + i];
      data[begin + i] = sum;
    }
  }
}

void MpiCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  const auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  const size_t ranks = static_cast<size_t>(size_);
  if (bytes <= chunk_bytes_) {  // one call, straight into recv
    MOE_MPI_CHECK(MPI_Allgather(in, as_count(bytes), MPI_BYTE, out, as_count(bytes), MPI_BYTE, impl_->comm));
    return;
  }
  // Chunk by chunk through a staging buffer: chunk c of rank r goes to out[r * bytes + offset].
  const size_t per_chunk = std::max<size_t>(1, chunk_bytes_ / ranks);
  std::vector<std::byte> staged(ranks * per_chunk);
  for (size_t offset = 0; offset < bytes; offset += per_chunk) {
    const size_t n = std::min(per_chunk, bytes - offset);
    MOE_MPI_CHECK(MPI_Allgather(in + offset, as_count(n), MPI_BYTE, staged.data(), as_count(n), MPI_BYTE, impl_->comm));
    for (size_t r = 0; r < ranks; ++r) std::memcpy(out + r * bytes + offset, staged.data() + r * n, n);
  }
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  MOE_CHECK(root >= 0 && root < size_, "broadcast on MPI rank ", rank_, ": root ", root, " is outside [0, ", size_,
            ")");
  auto* p = static_cast<std::byte*>(data);
  for (size_t offset = 0; offset < bytes; offset += chunk_bytes_) {
    const size_t n = std::min(chunk_bytes_, bytes - offset);
    MOE_MPI_CHECK(MPI_Bcast(p + offset, as_count(n), MPI_BYTE, root, impl_->comm));
  }
}

void MpiCommunicator::send(const void* data, size_t bytes, int peer, int tag) {
  const auto* p = static_cast<const std::byte*>(data);
  size_t offset = 0;
  do {  // at least one message, so a zero-byte send still matches its zero-byte recv
    const size_t n = std::min(chunk_bytes_, bytes - offset);
    MOE_MPI_CHECK(MPI_Send(p + offset, as_count(n), MPI_BYTE, peer, tag, impl_->comm));
    offset += n;
  } while (offset < bytes);
}

void MpiCommunicator::recv(void* data, size_t bytes, int peer, int tag) {
  auto* p = static_cast<std::byte*>(data);
  size_t offset = 0;
  do {
    const size_t n = std::min(chunk_bytes_, bytes - offset);
    MPI_Status status;
    MOE_MPI_CHECK(MPI_Recv(p + offset, as_count(n), MPI_BYTE, peer, tag, impl_->comm, &status));
    int got = 0;
    MOE_MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &got));
    MOE_CHECK(static_cast<size_t>(got) == n, "recv on MPI rank ", rank_, ": rank ", peer, " sent ", got,
              " bytes with tag ", tag, " at offset ", offset, ", expected ", n, " of ", bytes);
    offset += n;
  } while (offset < bytes);
}

void MpiCommunicator::barrier() {
  MOE_MPI_CHECK(MPI_Barrier(impl_->comm));
}

void MpiCommunicator::abort(int code, const std::string& why) {
  std::fprintf(stderr, "moe: MPI rank %d of %d aborting (code %d): %s\n", rank_, size_, code, why.c_str());
  std::fflush(stderr);
  MPI_Abort(impl_->comm, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it does
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  auto impl = std::make_unique<Impl>();
  MOE_MPI_CHECK(MPI_Comm_split(impl_->comm, color < 0 ? MPI_UNDEFINED : color, key, &impl->comm));
  if (impl->comm == MPI_COMM_NULL) return nullptr;
  auto result = std::unique_ptr<MpiCommunicator>(new MpiCommunicator(std::move(impl)));
  result->chunk_bytes_ = chunk_bytes_;
  return result;
}

}  // namespace moe::parallel
