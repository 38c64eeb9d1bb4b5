#include "parallel/comm_collectives.h"

#include <chrono>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

bool lives_with(const Tensor& t, const Communicator& c) {
  return (t.device == Device::kCpu) == (c.memory() == MemorySpace::kHost);
}

void check_f32(const Tensor& x, const char* op) {
  MOE_CHECK(x.dtype == DType::kF32 && !x.quant, op, ": activations must be F32, got ", dtype_name(x.dtype));
}

class Timer {
 public:
  explicit Timer(CommCounters& c, uint64_t bytes) : c_(c), t0_(std::chrono::steady_clock::now()) {
    ++c_.calls;
    c_.bytes += bytes;
  }
  ~Timer() { c_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

 private:
  CommCounters& c_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

CommCollectives::CommCollectives(Communicator& tensor_group, Communicator& stage_group, Backend& backend)
    : tensor_(tensor_group), stage_(stage_group), backend_(backend) {}

void CommCollectives::all_reduce_sum(Tensor& x, CommGroup g) {
  check_f32(x, "all_reduce_sum");
  Communicator& c = comm(g);
  if (c.size() == 1) return;
  const auto n = static_cast<size_t>(x.numel());
  Timer timer(counters_, n * sizeof(float));
  if (lives_with(x, c)) {
    backend_.synchronize();
    c.all_reduce_sum(x.as<float>(), n);
    return;
  }
  staging_.resize(n);
  backend_.copy_to_host(x, staging_.data(), n * sizeof(float));
  c.all_reduce_sum(staging_.data(), n);
  backend_.copy_from_host(staging_.data(), n * sizeof(float), x);
}

void CommCollectives::all_gather(const Tensor& x, Tensor& out, CommGroup g) {
  check_f32(x, "all_gather");
  Communicator& c = comm(g);
  const auto n = static_cast<size_t>(x.numel());
  MOE_CHECK(static_cast<size_t>(out.numel()) >= n * static_cast<size_t>(c.size()), "all_gather: output of ",
            out.numel(), " floats for ", c.size(), " ranks x ", n);
  Timer timer(counters_, n * sizeof(float));
  if (lives_with(x, c) && lives_with(out, c)) {
    backend_.synchronize();
    c.all_gather(x.data, n * sizeof(float), out.data);
    return;
  }
  staging_.resize(n);
  staging_out_.resize(n * static_cast<size_t>(c.size()));
  backend_.copy_to_host(x, staging_.data(), n * sizeof(float));
  c.all_gather(staging_.data(), n * sizeof(float), staging_out_.data());
  backend_.copy_from_host(staging_out_.data(), staging_out_.size() * sizeof(float), out);
}

void send_rows(Communicator& c, Backend& backend, const Tensor& x, int64_t rows, int peer, int tag,
               std::vector<float>& staging) {
  check_f32(x, "send_rows");
  const Tensor part = x.first_rows(rows);
  const auto bytes = static_cast<size_t>(part.numel()) * sizeof(float);
  if (lives_with(part, c)) {
    backend.synchronize();
    c.send(part.data, bytes, peer, tag);
    return;
  }
  staging.resize(static_cast<size_t>(part.numel()));
  backend.copy_to_host(part, staging.data(), bytes);
  c.send(staging.data(), bytes, peer, tag);
}

void recv_rows(Communicator& c, Backend& backend, Tensor& x, int64_t rows, int peer, int tag,
               std::vector<float>& staging) {
  check_f32(x, "recv_rows");
  Tensor part = x.first_rows(rows);
  const auto bytes = static_cast<size_t>(part.numel()) * sizeof(float);
  if (lives_with(part, c)) {
    backend.synchronize();
    c.recv(part.data, bytes, peer, tag);
    return;
  }
  staging.resize(static_cast<size_t>(part.numel()));
  c.recv(staging.data(), bytes, peer, tag);
  backend.copy_from_host(staging.data(), bytes, part);
}

}  // namespace moe::parallel
