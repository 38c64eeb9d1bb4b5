// Which instruction set qlinear/qswiglu (qlinear.h) run on: chosen at run time from what the CPU
// and the build support, and lowerable by tests and benchmarks to exercise every code path.
#pragma once

#include <cstdint>

namespace moe::cpu {

enum class QIsa : uint8_t {
  kPortable,  // plain C++ compiled for the baseline target (any x86-64, or any other CPU)
  kAvx2,      // x86-64-v3: AVX2, FMA, F16C
  kAvx512,    // x86-64-v4: AVX-512 F/BW/CD/DQ/VL
};

// "portable", "avx2", "avx512".
const char* qisa_name(QIsa isa);
// The best QIsa this build was compiled with and this CPU (and OS) supports.
QIsa qisa_best();
// The QIsa the kernels use now: qisa_best() unless lowered by qisa_set.
QIsa qisa_current();
// Uses min(isa, qisa_best()) from now on, for every thread; returns the QIsa now in use. Not for
// concurrent use with running kernels (tests and benchmarks switch between calls).
QIsa qisa_set(QIsa isa);

}  // namespace moe::cpu
