#include "parallel/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/core/error.h"

static_assert(NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0), "NcclCommunicator::split needs ncclCommSplit (NCCL 2.18)");

namespace moe::parallel {
namespace {

const char* base_name(const char* file) {
  const char* slash = std::strrchr(file, '/');
  return slash ? slash + 1 : file;
}

[[noreturn]] void throw_nccl_error(ncclResult_t result, ncclComm_t comm, const char* call, const char* file, int line,
                                   int rank) {
  // ncclGetLastError(nullptr) is documented to work without a communicator.
  const char* last = ncclGetLastError(comm);
  fail(call, " failed on NCCL rank ", rank, " (", base_name(file), ":", line, "): ", ncclGetErrorString(result),
       last && *last ? str_cat(" (", last, ")") : std::string());
}

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line, int rank) {
  fail(call, " failed on NCCL rank ", rank, " (", base_name(file), ":", line, "): ", cudaGetErrorName(err), ": ",
       cudaGetErrorString(err));
}

}  // namespace
}  // namespace moe::parallel

// The one way NCCL calls are checked, and its CUDA counterpart. Both name the rank through the
// member rank_ and so are used in NcclCommunicator's member functions only.
#define MOE_NCCL_CHECK(call)                                                                                    \
  do {                                                                                                          \
    const ncclResult_t moe_nccl_rc_ = (call);                                                                   \
    if (moe_nccl_rc_ != ncclSuccess)                                                                            \
      ::moe::parallel::throw_nccl_error(moe_nccl_rc_, impl_ ? impl_->comm : nullptr, #call, __FILE__, __LINE__, \
                                        rank_);                                                                 \
  } while (0)
#define MOE_NCCL_CUDA_CHECK(call)                                                         \
  do {                                                                                    \
    const cudaError_t moe_cuda_err_ = (call);                                             \
    if (moe_cuda_err_ != cudaSuccess)                                                     \
      ::moe::parallel::throw_cuda_error(moe_cuda_err_, #call, __FILE__, __LINE__, rank_); \
  } while (0)

namespace moe::parallel {

// Owns the NCCL and CUDA handles; the destructor releases them on their device, never throwing.
struct NcclCommunicator::Impl {
  int device = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  float* scratch = nullptr;  // (1), device memory: barrier()'s all-reduce

  explicit Impl(int dev) : device(dev) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    // Errors here cannot be reported (destructors do not throw); the process is likely ending.
    if (cudaSetDevice(device) != cudaSuccess) return;
    if (comm != nullptr) ncclCommDestroy(comm);
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (scratch != nullptr) cudaFree(scratch);
  }
};

NcclCommunicator::NcclCommunicator(int rank, int size, int device)
    : impl_(std::make_unique<Impl>(device)), rank_(rank), size_(size), device_(device) {}

NcclCommunicator::~NcclCommunicator() = default;

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(Communicator& bootstrap, int device) {
  MOE_CHECK(bootstrap.memory() == MemorySpace::kHost, "NcclCommunicator::create: the bootstrap communicator (",
            bootstrap.name(), ") must use host memory");
  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(bootstrap.rank(), bootstrap.size(), device));
  comm->connect(bootstrap);
  return comm;
}

void NcclCommunicator::connect(Communicator& bootstrap) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  // Rank 0's id travels with a flag, so a failure there fails every rank instead of leaving the
  // others waiting for an id that never comes.
  struct Packet {
    ncclUniqueId id;
    int ok;
  } packet{};
  std::string why;
  if (rank_ == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&packet.id);
    packet.ok = rc == ncclSuccess;
    if (!packet.ok) why = ncclGetErrorString(rc);
  }
  bootstrap.broadcast(&packet, sizeof(packet), 0);
  MOE_CHECK(packet.ok, "ncclGetUniqueId failed on NCCL rank 0", why.empty() ? std::string() : str_cat(": ", why));
  MOE_NCCL_CHECK(ncclCommInitRank(&impl_->comm, size_, packet.id, rank_));
  init_resources();
}

void NcclCommunicator::init_resources() {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  MOE_NCCL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&impl_->scratch), sizeof(float)));
}

void NcclCommunicator::synchronize(const char* op) {
  MOE_NCCL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  ncclResult_t async = ncclSuccess;
  MOE_NCCL_CHECK(ncclCommGetAsyncError(impl_->comm, &async));
  MOE_CHECK(async == ncclSuccess, op, " on NCCL rank ", rank_,
            ": asynchronous NCCL error: ", ncclGetErrorString(async));
}

void NcclCommunicator::all_reduce_sum(float* data, size_t count) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclAllReduce(data, data, count, ncclFloat, ncclSum, impl_->comm, impl_->stream));
  synchronize("all_reduce_sum");
}

void NcclCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclAllGather(send, recv, bytes, ncclChar, impl_->comm, impl_->stream));
  synchronize("all_gather");
}

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  MOE_CHECK(root >= 0 && root < size_, "broadcast on NCCL rank ", rank_, ": root ", root, " is outside [0, ", size_,
            ")");
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclBroadcast(data, data, bytes, ncclChar, root, impl_->comm, impl_->stream));
  synchronize("broadcast");
}

void NcclCommunicator::send(const void* data, size_t bytes, int peer, int /*tag: NCCL has none*/) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclSend(data, bytes, ncclChar, peer, impl_->comm, impl_->stream));
  synchronize("send");
}

void NcclCommunicator::recv(void* data, size_t bytes, int peer, int /*tag: NCCL has none*/) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclRecv(data, bytes, ncclChar, peer, impl_->comm, impl_->stream));
  synchronize("recv");
}

void NcclCommunicator::barrier() {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  MOE_NCCL_CHECK(ncclAllReduce(impl_->scratch, impl_->scratch, 1, ncclFloat, ncclSum, impl_->comm, impl_->stream));
  synchronize("barrier");
}

void NcclCommunicator::abort(int code, const std::string& why) {
  std::fprintf(stderr, "moe: NCCL rank %d of %d aborting (code %d): %s\n", rank_, size_, code, why.c_str());
  std::fflush(stderr);
  if (impl_->comm != nullptr) {
    ncclCommAbort(impl_->comm);  // nothing more can be done if it fails: we are exiting
    impl_->comm = nullptr;
  }
  std::_Exit(code);
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  MOE_NCCL_CUDA_CHECK(cudaSetDevice(device_));
  ncclComm_t child = nullptr;
  MOE_NCCL_CHECK(ncclCommSplit(impl_->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child, nullptr));
  if (child == nullptr) return nullptr;
  // Own the new handle before anything else can throw.
  auto impl = std::make_unique<Impl>(device_);
  impl->comm = child;
  int child_rank = 0;
  int child_size = 0;
  MOE_NCCL_CHECK(ncclCommUserRank(child, &child_rank));
  MOE_NCCL_CHECK(ncclCommCount(child, &child_size));
  std::unique_ptr<NcclCommunicator> result(new NcclCommunicator(child_rank, child_size, device_));
  result->impl_ = std::move(impl);
  result->init_resources();
  return result;
}

}  // namespace moe::parallel
