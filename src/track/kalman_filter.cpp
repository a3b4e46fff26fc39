#include "track/kalman_filter.h"

#include <algorithm>
#include <cmath>

namespace vidscan::track {
namespace {

inline double& At(std::array<double, 64>& m, int r, int c) { return m[r * 8 + c]; }

// Inverse of a symmetric positive-definite 4x4 matrix through its Cholesky factor (what the reference
// does with scipy's cho_factor/cho_solve).
void InvertSpd4(const double s[4][4], double inv[4][4]) {
  double l[4][4] = {};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j <= i; ++j) {
      double sum = s[i][j];
      for (int k = 0; k < j; ++k) sum -= l[i][k] * l[j][k];
      l[i][j] = i == j ? std::sqrt(sum) : sum / l[j][j];
    }
  }
  // inv = L^-T L^-1: invert L (lower triangular), then multiply.
  double li[4][4] = {};
  for (int i = 0; i < 4; ++i) {
    li[i][i] = 1.0 / l[i][i];
    for (int j = 0; j < i; ++j) {
      double sum = 0;
      for (int k = j; k < i; ++k) sum -= l[i][k] * li[k][j];
      li[i][j] = sum / l[i][i];
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      double sum = 0;
      for (int k = std::max(i, j); k < 4; ++k) sum += li[k][i] * li[k][j];
      inv[i][j] = sum;
    }
  }
}

}  // namespace

KalmanState KalmanFilterXyah::Initiate(const Xyah& z) const {
  KalmanState s;
  for (int i = 0; i < 4; ++i) s.mean[i] = z[i];
  const double h = z[3], wp = noise_.std_weight_position, wv = noise_.std_weight_velocity;
  const double std[8] = {2 * wp * h, 2 * wp * h, 1e-2, 2 * wp * h, 10 * wv * h, 10 * wv * h, 1e-5, 10 * wv * h};
  for (int i = 0; i < 8; ++i) At(s.covariance, i, i) = std[i] * std[i];
  return s;
}

void KalmanFilterXyah::Predict(KalmanState& s) const {
  const double h = s.mean[3], wp = noise_.std_weight_position, wv = noise_.std_weight_velocity;
  for (int i = 0; i < 4; ++i) s.mean[i] += s.mean[4 + i];
  // P = [A B; B^T C]  ->  F P F^T = [A + B + B^T + C, B + C; (B + C)^T, C].
  auto& p = s.covariance;
  double a[4][4];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      a[i][j] = At(p, i, j) + At(p, i, 4 + j) + At(p, 4 + i, j) + At(p, 4 + i, 4 + j);
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      At(p, i, j) = a[i][j];
      At(p, i, 4 + j) += At(p, 4 + i, 4 + j);
      At(p, 4 + i, j) += At(p, 4 + i, 4 + j);
    }
  }
  const double std[8] = {wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h};
  for (int i = 0; i < 8; ++i) At(p, i, i) += std[i] * std[i];
}

void KalmanFilterXyah::Update(KalmanState& s, const Xyah& z) const {
  auto& p = s.covariance;
  const double h = s.mean[3], wp = noise_.std_weight_position;
  const double r[4] = {wp * h, wp * h, 1e-1, wp * h};
  double sm[4][4];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) sm[i][j] = At(p, i, j);
    sm[i][i] += r[i] * r[i];
  }
  double s_inv[4][4];
  InvertSpd4(sm, s_inv);
  // K = P H^T S^-1, with P H^T the first four columns of P.
  double k[8][4];
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) {
      double sum = 0;
      for (int m = 0; m < 4; ++m) sum += At(p, i, m) * s_inv[m][j];
      k[i][j] = sum;
    }
  }
  double innovation[4];
  for (int i = 0; i < 4; ++i) innovation[i] = z[i] - s.mean[i];
  for (int i = 0; i < 8; ++i) {
    double sum = 0;
    for (int j = 0; j < 4; ++j) sum += k[i][j] * innovation[j];
    s.mean[i] += sum;
  }
  // K S K^T = (P H^T) K^T: read the first four columns of P before overwriting anything.
  double pht[8][4];
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) pht[i][j] = At(p, i, j);
  }
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) {
      double sum = 0;
      for (int m = 0; m < 4; ++m) sum += pht[i][m] * k[j][m];
      At(p, i, j) -= sum;
    }
  }
}

}  // namespace vidscan::track
