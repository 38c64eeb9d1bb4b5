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

// q8 and q4 weights take an integer path on AVX2 and AVX-512 (AVX-512 VNNI where the CPU has it):
// each token row of x is quantized per group to int8 (one f32 scale per group) and multiplied
// with the codes in integer arithmetic; an approximation of the f32 path within the rounding of
// x to int8 (qlinear.cpp). The f32 path serves the portable ISA, q3 and q2, and every format
// when forced: by MOE_QLINEAR_FLOAT=1 in the environment (read once, at start-up) or by
// qlinear_set_float.
//
// Whether the environment asks for the f32 path (MOE_QLINEAR_FLOAT=1); reads it on each call.
bool qlinear_float_from_env();
// Whether the f32 path is forced now (initially qlinear_float_from_env()).
bool qlinear_float_forced();
// Forces (true) or releases (false) the f32 path for every format; returns the previous setting.
// Not for concurrent use with running kernels.
bool qlinear_set_float(bool force);
// Whether the AVX-512 path uses VNNI integer dot products (CPU support); otherwise its integer
// path runs the AVX2 kernels.
bool qisa_has_vnni();

}  // namespace moe::cpu
