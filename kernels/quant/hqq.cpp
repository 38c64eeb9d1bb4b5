// HQQ proximal solver for the zero point of one group (see hqq.h).
#include "kernels/quant/hqq.h"

#include <algorithm>
#include <cmath>

namespace moe {

namespace {

// Generalised soft-thresholding, the proximal operator of |x|^p / beta:
// sign(x) * max(0, |x| - |x|^(p - 1) / beta); 0 for x == 0. `dead` = beta^(-1 / (2 - p)) is
// where |x| - |x|^(p - 1) / beta changes sign (p < 2): at or below it the result is 0, which
// skips the pow for the small errors of typical LLM weights.
inline float shrink_lp(float x, float beta, float p, float dead) {
  const float a = std::fabs(x);
  if (a <= dead) return 0.0f;
  const float t = a - std::pow(a, p - 1.0f) / beta;
  return t > 0.0f ? std::copysign(t, x) : 0.0f;
}

}  // namespace

float hqq_refit_zero(const float* w, int g, float s, float z0, int maxcode, const HqqParams& p) {
  const float top = static_cast<float>(maxcode);
  const float inv_s = 1.0f / s;
  float z = z0;
  float best_z = z0;
  double best_err = INFINITY;
  float beta = p.beta;
  for (int it = 0; it < p.iterations; ++it) {
    const float dead = p.lp_norm < 2.0f ? std::pow(beta, -1.0f / (2.0f - p.lp_norm)) : 0.0f;
    double err = 0.0;
    double zsum = 0.0;
    for (int j = 0; j < g; ++j) {
      const float q = std::clamp(std::nearbyint(w[j] * inv_s + z), 0.0f, top);
      const float r = (q - z) * s;
      const float e = w[j] - r;
      err += std::fabs(e);
      zsum += static_cast<double>(q - (w[j] - shrink_lp(e, beta, p.lp_norm, dead)) * inv_s);
    }
    if (!(err < best_err)) break;
    best_err = err;
    best_z = z;
    z = static_cast<float>(zsum / g);
    beta *= p.kappa;
  }
  return best_z;
}

}  // namespace moe
