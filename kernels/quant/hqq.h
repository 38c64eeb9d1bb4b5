// The HQQ zero-point solver (Badri & Shaji 2023, optimize_weights_proximal of the hqq repo) on
// one group. Private to kernels/quant.
#pragma once

#include <cstdint>

namespace moe {

struct HqqParams {
  int iterations = 20;
  float lp_norm = 0.7f;  // p < 1 of the robust error |W - W_r|^p
  float beta = 10.0f;    // initial penalty of the half-quadratic split
  float kappa = 1.01f;   // beta grows by this factor per step
};

// Returns the refitted zero (real, code units) of group w[0, g) for the fixed scale s, starting
// from zero z0, codes in [0, maxcode]. Each step:
//   W_q = clamp(round(W / s + z)), W_r = (W_q - z) * s, W_e = shrink_p(W - W_r, beta),
//   z = mean(W_q - (W - W_e) / s), beta *= kappa,
// stopping at the first step whose mean |W - W_r| does not improve; the zero of the best step
// is returned (z0 when the first step is already the best). Deterministic.
float hqq_refit_zero(const float* w, int g, float s, float z0, int maxcode, const HqqParams& p);

}  // namespace moe
