// The VRAM tier of expert offloading as a device backend provides it: fixed-size expert slots in
// device memory, page-locked host memory to copy from, and an asynchronous copy queue (a copy
// stream on CUDA) ordered against the backend's compute stream with events. Obtained from
// Backend::make_expert_slots (null on the CPU backend, which computes from host memory); used by
// runtime/offload/gpu_offloaded_experts.h. No CUDA type appears here: the CUDA backend implements
// it in runtime/backend/cuda_expert_slots.cpp, and tests/offload/fake_device_slots.h is a CPU fake
// with which the provider's bookkeeping runs in CI.
//
// Ordering contract (every call comes from the thread that issues the backend's ops):
//  - copy_in() queues the copy of one expert from host memory into a slot, and the rewrite of its
//    weights into the backend's layout (what load_weight does), on the copy queue. The copy first
//    waits, on the device, for the slot's last fence(): a slot is never overwritten while an op
//    issued before that fence may still read it. copy_in() never blocks the host.
//  - The weights copy_in() returns may be handed to ops only after wait(ticket): the compute
//    stream waits for the copy on the device; the host does not block.
//  - finished(ticket) says, without blocking, whether the copy is complete: only then may its
//    host source be overwritten or freed. Copies complete in ticket order.
//  - fence(slot) is called once the last op reading the slot has been issued.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/backend/tensor.h"

namespace moe {

struct MlpWeights;

// Device memory as the driver reports it (bytes); zeros for host backends.
struct DeviceMemory {
  uint64_t total = 0;
  uint64_t free = 0;
};

class DeviceExpertSlots {
 public:
  using Ticket = uint64_t;  // 1, 2, 3, ... in queue order; 0 means "no copy"

  virtual ~DeviceExpertSlots() = default;

  virtual int64_t slots() const = 0;
  virtual uint64_t slot_bytes() const = 0;
  // e.g. "16 VRAM slots x 336.0 MiB, copy stream".
  virtual std::string describe() const = 0;

  // Page-locks [p, p + bytes) (the host slot pool) so copies from it are asynchronous. The
  // registration ends when this object is destroyed, which must happen before the memory is freed.
  virtual void register_host(void* p, uint64_t bytes) = 0;

  // Queues the copy of one expert into `slot`. `host` are the expert's three weights in the stored
  // layout, viewing host memory inside [host_base, host_base + slot_bytes()); each lands at the same
  // offset from the slot's start. Returns the weights as they will be in the slot (device tensors
  // in the backend's layout) and sets *ticket.
  virtual MlpWeights copy_in(int64_t slot, const uint8_t* host_base, const MlpWeights& host, Ticket* ticket) = 0;
  // True when copy `t` (and every copy before it) has completed. Never blocks.
  virtual bool finished(Ticket t) = 0;
  // Ops issued from now on run after copy `t`: a device-side wait, the host does not block.
  virtual void wait(Ticket t) = 0;
  // Blocks the host until copy `t` has completed (shutdown, or a host slot needed back at once).
  virtual void host_wait(Ticket t) = 0;
  // The last op reading `slot` has been issued: the next copy into it waits for those ops.
  virtual void fence(int64_t slot) = 0;
  // Bytes queued on the copy queue and not known to be complete (the miss cost model's queue).
  virtual uint64_t bytes_in_flight() = 0;
};

}  // namespace moe
