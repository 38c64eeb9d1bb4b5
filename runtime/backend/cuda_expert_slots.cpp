// The CUDA backend's VRAM tier for expert offloading (the contract is in device_expert_slots.h):
// one device allocation of fixed-size slots, a copy stream of its own, an event per slot that the
// compute stream records after the last op reading the slot (the copy stream waits on it before
// overwriting), and an event per queued copy (the compute stream waits on it before the expert's
// ops; the host polls it to know when the host source is free). Quantized weights are copied into
// a device staging buffer and rewritten into the slot in the device layout by the same repack
// kernel load_weight uses, on the copy stream.
//
// Nothing here blocks the host except host_wait(). Every call that records on or waits from the
// compute stream first ends a CUDA-graph capture in progress and marks the piece eager: pieces of
// an offloaded step run without graphs (events of another stream cannot be waited on inside a
// capture without external event nodes; see docs/offloading.md).
#include <deque>
#include <vector>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/quant_repack.cuh"
#include "runtime/backend/cuda_backend.h"
#include "runtime/backend/cuda_backend_impl.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

std::string mib(uint64_t bytes) {
  const auto tenths = static_cast<long long>(static_cast<double>(bytes) / double(1 << 20) * 10 + 0.5);
  return str_cat(tenths / 10, ".", tenths % 10, " MiB");
}

class CudaExpertSlots final : public DeviceExpertSlots {
 public:
  CudaExpertSlots(CudaBackend::Impl& m, int64_t slots, uint64_t slot_bytes)
      : m_(m), slots_(slots), slot_bytes_((slot_bytes + 255) / 256 * 256) {
    MOE_CHECK(slots >= 1, "cuda backend: the VRAM expert tier needs at least one slot, got ", slots);
    m_.flush_capture();
    m_.piece_eager = true;
    mem_ = static_cast<uint8_t*>(m_.pool.allocate(static_cast<size_t>(slots) * slot_bytes_));
    staging_.reserve(slot_bytes_);
    fences_.reserve(static_cast<size_t>(slots));
    for (int64_t i = 0; i < slots; ++i) fences_.emplace_back();
    fenced_.assign(static_cast<size_t>(slots), false);
  }

  ~CudaExpertSlots() override {
    // No copy may still read host memory that is about to be unregistered (and then freed).
    cudaStreamSynchronize(copy_.get());
    for (void* p : registered_) cudaHostUnregister(p);
  }

  int64_t slots() const override { return slots_; }
  uint64_t slot_bytes() const override { return slot_bytes_; }
  std::string describe() const override {
    return str_cat(slots_, " VRAM slots x ", mib(slot_bytes_), ", copy stream",
                   registered_.empty() ? ", host memory pageable" : ", host slots pinned");
  }

  void register_host(void* p, uint64_t bytes) override {
    if (p == nullptr || bytes == 0) return;
    MOE_CUDA_CHECK(cudaHostRegister(p, bytes, cudaHostRegisterDefault));
    registered_.push_back(p);
  }

  MlpWeights copy_in(int64_t slot, const uint8_t* host_base, const MlpWeights& host, Ticket* ticket) override {
    MOE_CHECK(slot >= 0 && slot < slots_, "cuda backend: VRAM slot ", slot, " out of range [0, ", slots_, ")");
    const cudaStream_t cs = copy_.get();
    if (fenced_[static_cast<size_t>(slot)])
      MOE_CUDA_CHECK(cudaStreamWaitEvent(cs, fences_[static_cast<size_t>(slot)].get(), 0));
    uint8_t* base = mem_ + static_cast<uint64_t>(slot) * slot_bytes_;
    auto* staging = static_cast<uint8_t*>(staging_.get());
    uint64_t bytes = 0;
    auto one = [&](const Tensor& w) {
      Tensor d = w;
      d.device = Device::kCuda;
      if (w.empty() || w.nbytes() == 0) return d;
      const auto* src = static_cast<const uint8_t*>(w.data);
      MOE_CHECK(src >= host_base && src + w.nbytes() <= host_base + slot_bytes_,
                "cuda backend: an expert weight lies outside its host slot");
      const uint64_t rel = static_cast<uint64_t>(src - host_base);
      d.data = base + rel;
      if (!w.quant || is_ggml(w.quant->type)) {  // ggml blocks stay in their stored layout
        MOE_CUDA_CHECK(cudaMemcpyAsync(d.data, src, w.nbytes(), cudaMemcpyHostToDevice, cs));
      } else {
        const int64_t K = w.dim(w.rank - 1);
        MOE_CHECK(K % w.quant->group_size == 0, "cuda backend: expert weight row length ", K,
                  " is not a multiple of the group size ", w.quant->group_size);
        MOE_CUDA_CHECK(cudaMemcpyAsync(staging + rel, src, w.nbytes(), cudaMemcpyHostToDevice, cs));
        cuda::repack_quantized(staging + rel, d.data, w.numel() / K, K, qformat_of(w.quant->type), w.quant->group_size,
                               cs);
      }
      bytes += w.nbytes();
      return d;
    };
    MlpWeights out{.gate = one(host.gate), .up = one(host.up), .down = one(host.down)};
    InFlight f{.ticket = ++last_, .event = take_event(), .bytes = bytes};
    events_[f.event].record(cs);
    in_flight_.push_back(f);
    *ticket = f.ticket;
    return out;
  }

  bool finished(Ticket t) override {
    poll();
    return t <= done_;
  }

  void wait(Ticket t) override {
    if (finished(t)) return;
    m_.flush_capture();
    m_.piece_eager = true;
    MOE_CUDA_CHECK(cudaStreamWaitEvent(m_.s(), events_[find(t).event].get(), 0));
  }

  void host_wait(Ticket t) override {
    if (finished(t)) return;
    events_[find(t).event].synchronize();
    poll();
  }

  void fence(int64_t slot) override {
    MOE_CHECK(slot >= 0 && slot < slots_, "cuda backend: VRAM slot ", slot, " out of range [0, ", slots_, ")");
    m_.flush_capture();
    m_.piece_eager = true;
    fences_[static_cast<size_t>(slot)].record(m_.s());
    fenced_[static_cast<size_t>(slot)] = true;
  }

  uint64_t bytes_in_flight() override {
    poll();
    uint64_t b = 0;
    for (const InFlight& f : in_flight_) b += f.bytes;
    return b;
  }

 private:
  struct InFlight {
    Ticket ticket = 0;
    size_t event = 0;  // index into events_
    uint64_t bytes = 0;
  };

  size_t take_event() {
    if (free_events_.empty()) {
      events_.emplace_back();
      return events_.size() - 1;
    }
    const size_t e = free_events_.back();
    free_events_.pop_back();
    return e;
  }

  // Copies complete in queue order: retire them oldest first.
  void poll() {
    while (!in_flight_.empty()) {
      const cudaError_t r = cudaEventQuery(events_[in_flight_.front().event].get());
      if (r == cudaErrorNotReady) return;
      MOE_CUDA_CHECK(r);
      done_ = in_flight_.front().ticket;
      free_events_.push_back(in_flight_.front().event);
      in_flight_.pop_front();
    }
  }

  const InFlight& find(Ticket t) const {
    for (const InFlight& f : in_flight_)
      if (f.ticket == t) return f;
    fail("cuda backend: copy ", t, " is neither queued nor finished (last queued: ", last_, ")");
  }

  CudaBackend::Impl& m_;
  int64_t slots_;
  uint64_t slot_bytes_;
  uint8_t* mem_ = nullptr;  // slots_ x slot_bytes_, from the backend's pool (freed with it)
  cuda::DeviceScratch staging_;
  cuda::Stream copy_;
  std::vector<cuda::Event> fences_;  // per slot, recorded on the compute stream
  std::vector<bool> fenced_;
  std::vector<cuda::Event> events_;  // copy completions, recycled
  std::vector<size_t> free_events_;
  std::deque<InFlight> in_flight_;
  Ticket last_ = 0, done_ = 0;
  std::vector<void*> registered_;
};

}  // namespace

std::unique_ptr<DeviceExpertSlots> CudaBackend::make_expert_slots(int64_t slots, uint64_t slot_bytes) {
  return std::make_unique<CudaExpertSlots>(*impl_, slots, slot_bytes);
}

DeviceMemory CudaBackend::device_memory() const {
  size_t free = 0, total = 0;
  MOE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return DeviceMemory{.total = total, .free = free};
}

}  // namespace moe
