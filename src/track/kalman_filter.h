// The constant-velocity Kalman filter of SORT/DeepSORT/ByteTrack on (cx, cy, aspect = w/h, h) and their
// velocities, with the reference noise model: every standard deviation is a fixed fraction of the box
// height (position 1/20, velocity 1/160) except the aspect terms, which are small constants.
#pragma once

#include <array>

namespace vidscan::track {

// Box measurement: centre x, centre y, aspect ratio w/h, height.
using Xyah = std::array<double, 4>;

// The reference keeps a dense 8x8 covariance, but with F = [I I; 0 I], H = [I 0] and diagonal Q, R and
// initial covariance, no coordinate ever correlates with another: the covariance stays a set of four
// independent 2x2 blocks, one per coordinate and its velocity. Storing only those (12 numbers instead
// of 64) gives the same filter, exactly, at a fraction of the arithmetic; Covariance() expands it.
struct KalmanState {
  std::array<double, 8> mean{};  // cx, cy, a, h, vcx, vcy, va, vh (per frame)
  std::array<double, 4> var_pos{}, cov_pos_vel{}, var_vel{};  // per coordinate i: P[i][i], P[i][4+i], P[4+i][4+i]

  std::array<double, 64> Covariance() const;  // the full row-major 8x8 matrix
};

struct KalmanNoise {
  double std_weight_position = 1.0 / 20;
  double std_weight_velocity = 1.0 / 160;
};

class KalmanFilterXyah {
 public:
  explicit KalmanFilterXyah(KalmanNoise noise = {}) : noise_(noise) {}

  // A new track: mean = (measurement, 0), diagonal covariance scaled by the height.
  KalmanState Initiate(const Xyah& measurement) const;
  // One frame step: x = F x, P = F P F^T + Q, with Q from the height before the step.
  void Predict(KalmanState& state) const;
  // Measurement update: S = H P H^T + R, K = P H^T S^-1, x += K (z - H x), P -= K S K^T, with R from the
  // predicted height.
  void Update(KalmanState& state, const Xyah& measurement) const;

 private:
  KalmanNoise noise_;
};

}  // namespace vidscan::track
