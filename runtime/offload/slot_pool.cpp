#include "runtime/offload/slot_pool.h"

#include <cstdlib>

#include "runtime/core/error.h"

namespace moe {

void SlotPool::Free::operator()(uint8_t* p) const {
  std::free(p);
}

SlotPool::SlotPool(int64_t slots, uint64_t slot_bytes) : slots_(slots), slot_bytes_(round_up(slot_bytes)) {
  MOE_CHECK(slots >= 0, "SlotPool: negative slot count ", slots);
  if (slots == 0) return;
  const uint64_t total = bytes();
  void* p = std::aligned_alloc(kAlign, total);
  MOE_CHECK(p != nullptr, "cannot allocate ", slots, " expert slots of ", slot_bytes_, " bytes (", total,
            " bytes in all) in host memory");
  mem_.reset(static_cast<uint8_t*>(p));
}

uint8_t* SlotPool::data(int64_t slot) const {
  MOE_CHECK(slot >= 0 && slot < slots_, "SlotPool: slot ", slot, " outside [0, ", slots_, ")");
  return mem_.get() + static_cast<uint64_t>(slot) * slot_bytes_;
}

}  // namespace moe
