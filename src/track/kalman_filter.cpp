#include "track/kalman_filter.h"

namespace vidscan::track {

std::array<double, 64> KalmanState::Covariance() const {
  std::array<double, 64> p{};
  for (int i = 0; i < 4; ++i) {
    p[i * 8 + i] = var_pos[i];
    p[i * 8 + 4 + i] = p[(4 + i) * 8 + i] = cov_pos_vel[i];
    p[(4 + i) * 8 + 4 + i] = var_vel[i];
  }
  return p;
}

KalmanState KalmanFilterXyah::Initiate(const Xyah& z) const {
  KalmanState s;
  const double h = z[3], wp = noise_.std_weight_position, wv = noise_.std_weight_velocity;
  const double std_pos[4] = {2 * wp * h, 2 * wp * h, 1e-2, 2 * wp * h};
  const double std_vel[4] = {10 * wv * h, 10 * wv * h, 1e-5, 10 * wv * h};
  for (int i = 0; i < 4; ++i) {
    s.mean[i] = z[i];
    s.var_pos[i] = std_pos[i] * std_pos[i];
    s.var_vel[i] = std_vel[i] * std_vel[i];
  }
  return s;
}

void KalmanFilterXyah::Predict(KalmanState& s) const {
  const double h = s.mean[3], wp = noise_.std_weight_position, wv = noise_.std_weight_velocity;
  const double std_pos[4] = {wp * h, wp * h, 1e-2, wp * h};
  const double std_vel[4] = {wv * h, wv * h, 1e-5, wv * h};
  for (int i = 0; i < 4; ++i) {
    s.mean[i] += s.mean[4 + i];
    // [pp pv; pv vv] -> F [..] F^T = [pp + 2 pv + vv, pv + vv; pv + vv, vv], plus Q.
    s.var_pos[i] += 2 * s.cov_pos_vel[i] + s.var_vel[i] + std_pos[i] * std_pos[i];
    s.cov_pos_vel[i] += s.var_vel[i];
    s.var_vel[i] += std_vel[i] * std_vel[i];
  }
}

void KalmanFilterXyah::Update(KalmanState& s, const Xyah& z) const {
  const double h = s.mean[3], wp = noise_.std_weight_position;
  const double std_meas[4] = {wp * h, wp * h, 1e-1, wp * h};
  for (int i = 0; i < 4; ++i) {
    const double innovation_var = s.var_pos[i] + std_meas[i] * std_meas[i];
    const double gain_pos = s.var_pos[i] / innovation_var, gain_vel = s.cov_pos_vel[i] / innovation_var;
    const double innovation = z[i] - s.mean[i];
    s.mean[i] += gain_pos * innovation;
    s.mean[4 + i] += gain_vel * innovation;
    // P -= K S K^T = (P H^T) K^T.
    s.var_vel[i] -= s.cov_pos_vel[i] * gain_vel;
    s.cov_pos_vel[i] -= s.var_pos[i] * gain_vel;
    s.var_pos[i] -= s.var_pos[i] * gain_pos;
  }
}

}  // namespace vidscan::track
