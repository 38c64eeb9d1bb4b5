// ggml_qlinear's integer kernels (ggml_qlinear_x86.h): the body ggml_qlinear_x86.inc compiled
// twice, for AVX2 (x86-64-v3) and for AVX-512 VL + VNNI (x86-64-v4), each under its own
// `#pragma GCC target`; GCC on x86-64 only (clang builds leave it empty and take the f32 path).
#include "kernels/cpu/ggml_qlinear_x86.h"

#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/quant/ggml_quants.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MOE_GGML_X86 1
// GCC 12's AVX-512 intrinsics trip false -W(maybe-)uninitialized warnings once inlined (GCC PR
// 105593): silenced for the header's own lines only, as in qlinear.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#define MOE_GGML_X86 0
#endif

namespace moe::cpu::ggml_x86 {

#if MOE_GGML_X86
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,avx512vnni")
namespace vnni {
#define MOE_GGML_ISA 512
#include "kernels/cpu/ggml_qlinear_x86.inc"
#undef MOE_GGML_ISA
}  // namespace vnni
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace avx2 {
#define MOE_GGML_ISA 256
#include "kernels/cpu/ggml_qlinear_x86.inc"
#undef MOE_GGML_ISA
}  // namespace avx2
#pragma GCC pop_options
#endif

const TileKernels* ggml_qlinear_x86_kernels(QuantType type, bool vnni) {
#if MOE_GGML_X86
  return vnni ? vnni::kernels_for(type) : avx2::kernels_for(type);
#else
  (void)type;
  (void)vnni;
  return nullptr;
#endif
}

}  // namespace moe::cpu::ggml_x86
