// Fixed-size slots of host memory for experts: one allocation, every slot the size of the
// largest expert rounded up to 4 KiB and 4 KiB aligned, so any expert fits any slot, an O_DIRECT
// read can land in it, and the tier never fragments. (The GPU tier is the same idea over device
// memory: a slab of VRAM slots.)
#pragma once

#include <cstdint>
#include <memory>

namespace moe {

class SlotPool {
 public:
  static constexpr uint64_t kAlign = 4096;

  SlotPool() = default;
  // Throws moe::Error with the byte counts when the memory cannot be had.
  SlotPool(int64_t slots, uint64_t slot_bytes);

  int64_t slots() const { return slots_; }
  uint64_t slot_bytes() const { return slot_bytes_; }
  uint64_t bytes() const { return static_cast<uint64_t>(slots_) * slot_bytes_; }
  uint8_t* data(int64_t slot) const;

  // `bytes` rounded up to the slot alignment.
  static uint64_t round_up(uint64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> mem_;
  int64_t slots_ = 0;
  uint64_t slot_bytes_ = 0;
};

}  // namespace moe
