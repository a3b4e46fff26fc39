#include <gtest/gtest.h>

#include <random>

#include "track/kalman_filter.h"

namespace vidscan::track {
namespace {

// A dense float64 reference of the filter as written in the ByteTrack/DeepSORT code: full matrix
// products with F, H, Q, R and a Gauss-Jordan inverse of S.
using Mat = std::vector<std::vector<double>>;

Mat Zeros(int r, int c) { return Mat(r, std::vector<double>(c, 0.0)); }
Mat Eye(int n) {
  Mat m = Zeros(n, n);
  for (int i = 0; i < n; ++i) m[i][i] = 1;
  return m;
}
Mat Mul(const Mat& a, const Mat& b) {
  Mat m = Zeros(a.size(), b[0].size());
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b[0].size(); ++j)
      for (size_t k = 0; k < b.size(); ++k) m[i][j] += a[i][k] * b[k][j];
  return m;
}
Mat T(const Mat& a) {
  Mat m = Zeros(a[0].size(), a.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[0].size(); ++j) m[j][i] = a[i][j];
  return m;
}
Mat Add(const Mat& a, const Mat& b, double sb = 1) {
  Mat m = a;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[0].size(); ++j) m[i][j] += sb * b[i][j];
  return m;
}
Mat Inverse(Mat a) {
  const int n = a.size();
  Mat inv = Eye(n);
  for (int c = 0; c < n; ++c) {
    int pivot = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    std::swap(a[c], a[pivot]);
    std::swap(inv[c], inv[pivot]);
    const double d = a[c][c];
    for (int j = 0; j < n; ++j) a[c][j] /= d, inv[c][j] /= d;
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c];
      for (int j = 0; j < n; ++j) a[r][j] -= f * a[c][j], inv[r][j] -= f * inv[c][j];
    }
  }
  return inv;
}
Mat Diag(const std::vector<double>& std_devs) {
  Mat m = Zeros(std_devs.size(), std_devs.size());
  for (size_t i = 0; i < std_devs.size(); ++i) m[i][i] = std_devs[i] * std_devs[i];
  return m;
}

struct Reference {
  Mat x = Zeros(8, 1), p = Zeros(8, 8);
  static constexpr double wp = 1.0 / 20, wv = 1.0 / 160;

  void Initiate(const Xyah& z) {
    for (int i = 0; i < 4; ++i) x[i][0] = z[i];
    const double h = z[3];
    p = Diag({2 * wp * h, 2 * wp * h, 1e-2, 2 * wp * h, 10 * wv * h, 10 * wv * h, 1e-5, 10 * wv * h});
  }
  void Predict() {
    Mat f = Eye(8);
    for (int i = 0; i < 4; ++i) f[i][4 + i] = 1;
    const double h = x[3][0];
    Mat q = Diag({wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h});
    x = Mul(f, x);
    p = Add(Mul(Mul(f, p), T(f)), q);
  }
  void Update(const Xyah& z) {
    Mat h_mat = Zeros(4, 8);
    for (int i = 0; i < 4; ++i) h_mat[i][i] = 1;
    const double h = x[3][0];
    Mat s = Add(Mul(Mul(h_mat, p), T(h_mat)), Diag({wp * h, wp * h, 1e-1, wp * h}));
    Mat k = Mul(Mul(p, T(h_mat)), Inverse(s));
    Mat y = Zeros(4, 1);
    for (int i = 0; i < 4; ++i) y[i][0] = z[i] - x[i][0];
    x = Add(x, Mul(k, y));
    p = Add(p, Mul(Mul(k, s), T(k)), -1);
  }
};

void ExpectClose(const KalmanState& s, const Reference& r, const char* where) {
  const auto covariance = s.Covariance();
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(s.mean[i], r.x[i][0], 1e-9 * (1 + std::abs(r.x[i][0]))) << where << " mean[" << i << "]";
    for (int j = 0; j < 8; ++j) {
      const double ref = r.p[i][j];
      EXPECT_NEAR(covariance[i * 8 + j], ref, 1e-9 * (1 + std::abs(ref))) << where << " P[" << i << "][" << j << "]";
    }
  }
}

// The compact filter (four 2x2 blocks) against the dense one: random tracks: initiate, then a random mix of predicts and updates, with measurements near the
// prediction (as a tracker would feed) and sometimes far off; the fast filter stays within 1e-9
// (relative) of the dense reference.
TEST(KalmanFilter, MatchesDenseFloat64Reference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  KalmanFilterXyah kf;
  for (int track = 0; track < 50; ++track) {
    Xyah z = {u(rng) * 1920, u(rng) * 1080, 0.3 + u(rng) * 0.5, 20 + u(rng) * 200};
    KalmanState s = kf.Initiate(z);
    Reference ref;
    ref.Initiate(z);
    ExpectClose(s, ref, "initiate");
    for (int step = 0; step < 40; ++step) {
      if (u(rng) < 0.7) {
        kf.Predict(s);
        ref.Predict();
        ExpectClose(s, ref, "predict");
      }
      if (u(rng) < 0.8) {
        const double jump = u(rng) < 0.1 ? 50 : 3;
        Xyah m = {s.mean[0] + (u(rng) - 0.5) * jump, s.mean[1] + (u(rng) - 0.5) * jump,
                  s.mean[2] * (1 + (u(rng) - 0.5) * 0.05), s.mean[3] * (1 + (u(rng) - 0.5) * 0.05)};
        kf.Update(s, m);
        ref.Update(m);
        ExpectClose(s, ref, "update");
      }
      if (testing::Test::HasFailure()) return;
    }
  }
}

TEST(KalmanFilter, LearnsConstantVelocity) {
  KalmanFilterXyah kf;
  KalmanState s = kf.Initiate({100, 200, 0.5, 100});
  for (int t = 1; t <= 30; ++t) {
    kf.Predict(s);
    kf.Update(s, {100 + 3.0 * t, 200 - 1.0 * t, 0.5, 100});
  }
  EXPECT_NEAR(s.mean[4], 3.0, 0.05);
  EXPECT_NEAR(s.mean[5], -1.0, 0.05);
  kf.Predict(s);
  EXPECT_NEAR(s.mean[0], 100 + 3.0 * 31, 0.5);
}

}  // namespace
}  // namespace vidscan::track
