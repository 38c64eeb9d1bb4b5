// A CPU fake of the VRAM tier (runtime/backend/device_expert_slots.h), so GpuOffloadedExperts'
// bookkeeping runs in CI against the CPU backend. It keeps the contract's hazards observable:
//  - a copy is lazy: copy_in() poisons the slot (0xFF bytes: NaN floats and scales) and the bytes
//    land only when the copy "completes" (wait, host_wait, or finished() polls, which complete
//    `complete_per_poll` copies each), read from the host source at that moment; so ops that use a
//    slot before wait(), or a host slot reused before its copy finished, give wrong results;
//  - completion rewrites the weights into the backend's layout (CpuBackend::adopt_weight_in_place),
//    as the CUDA backend repacks on the copy stream;
//  - a copy into a slot that was waited on (in use) and not fenced since counts as a violation.
#pragma once

#include <cstring>
#include <deque>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/offload/slot_pool.h"

namespace moe::test {

class FakeDeviceSlots final : public DeviceExpertSlots {
 public:
  FakeDeviceSlots(CpuBackend& cpu, int64_t slots, uint64_t slot_bytes, int64_t complete_per_poll)
      : cpu_(cpu), pool_(slots, slot_bytes), per_poll_(complete_per_poll) {
    in_use_.assign(static_cast<size_t>(slots), false);
  }

  int64_t slots() const override { return pool_.slots(); }
  uint64_t slot_bytes() const override { return pool_.slot_bytes(); }
  std::string describe() const override { return str_cat(pool_.slots(), " fake VRAM slots"); }
  void register_host(void*, uint64_t bytes) override { registered_ += bytes; }

  MlpWeights copy_in(int64_t slot, const uint8_t* host_base, const MlpWeights& host, Ticket* ticket) override {
    MOE_CHECK(slot >= 0 && slot < pool_.slots(), "fake slots: slot ", slot, " out of range");
    if (in_use_[static_cast<size_t>(slot)]) ++violations_;
    uint8_t* base = pool_.data(slot);
    std::memset(base, 0xFF, pool_.slot_bytes());
    Copy c{.ticket = ++last_, .slot = slot, .host_base = host_base, .host = host, .bytes = 0};
    MlpWeights out{.gate = device_view(host.gate, host_base, base, &c.bytes),
                   .up = device_view(host.up, host_base, base, &c.bytes),
                   .down = device_view(host.down, host_base, base, &c.bytes)};
    pending_.push_back(c);
    slot_of_.push_back(slot);
    *ticket = c.ticket;
    return out;
  }

  bool finished(Ticket t) override {
    for (int64_t i = 0; i < per_poll_ && !pending_.empty(); ++i) complete_one();
    return t <= done_;
  }
  void wait(Ticket t) override {
    while (done_ < t) complete_one();
    if (t > 0) in_use_[static_cast<size_t>(slot_of_[static_cast<size_t>(t - 1)])] = true;
  }
  void host_wait(Ticket t) override {
    ++host_waits_;
    while (done_ < t) complete_one();
  }
  void fence(int64_t slot) override {
    in_use_[static_cast<size_t>(slot)] = false;
    ++fences_;
  }
  uint64_t bytes_in_flight() override {
    uint64_t b = 0;
    for (const Copy& c : pending_) b += c.bytes;
    return b;
  }

  int64_t violations() const { return violations_; }
  int64_t host_waits() const { return host_waits_; }
  int64_t fences() const { return fences_; }
  uint64_t copies() const { return last_; }
  uint64_t registered() const { return registered_; }

 private:
  struct Copy {
    Ticket ticket = 0;
    int64_t slot = 0;
    const uint8_t* host_base = nullptr;
    MlpWeights host;
    uint64_t bytes = 0;
  };

  // The weight as it will be in the slot: same offset, the layout the backend gives it (learnt by
  // adopting a scratch copy).
  Tensor device_view(const Tensor& w, const uint8_t* host_base, uint8_t* base, uint64_t* bytes) {
    Tensor d = w;
    if (w.empty()) return d;
    const auto rel = static_cast<uint64_t>(static_cast<const uint8_t*>(w.data) - host_base);
    MOE_CHECK(rel + w.nbytes() <= pool_.slot_bytes(), "fake slots: weight outside its host slot");
    scratch_.assign(static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(w.data) + w.nbytes());
    Tensor probe = w;
    probe.data = scratch_.data();
    d.qlayout = cpu_.adopt_weight_in_place(probe).qlayout;
    d.data = base + rel;
    *bytes += w.nbytes();
    return d;
  }

  void complete_one() {
    MOE_CHECK(!pending_.empty(), "fake slots: waiting for a copy that was never queued");
    const Copy c = pending_.front();
    pending_.pop_front();
    uint8_t* base = pool_.data(c.slot);
    for (const Tensor* w : {&c.host.gate, &c.host.up, &c.host.down}) {
      if (w->empty()) continue;
      const auto rel = static_cast<uint64_t>(static_cast<const uint8_t*>(w->data) - c.host_base);
      std::memcpy(base + rel, w->data, w->nbytes());
      Tensor t = *w;
      t.data = base + rel;
      cpu_.adopt_weight_in_place(t);
    }
    done_ = c.ticket;
  }

  CpuBackend& cpu_;
  SlotPool pool_;
  int64_t per_poll_;
  std::deque<Copy> pending_;
  std::vector<int64_t> slot_of_;  // per ticket - 1
  std::vector<bool> in_use_;
  std::vector<uint8_t> scratch_;
  Ticket last_ = 0, done_ = 0;
  int64_t violations_ = 0, host_waits_ = 0, fences_ = 0;
  uint64_t registered_ = 0;
};

}  // namespace moe::test
