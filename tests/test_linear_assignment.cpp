#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "track/linear_assignment.h"

namespace vidscan::track {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The objective SolveLinearAssignment promises, as (pairs, cost) compared lexicographically: with a
// finite limit, minimise sum(cost - limit) over matched pairs (pairs count as 0 in the key); without,
// maximise the number of pairs, then minimise their cost.
struct Score {
  int pairs = 0;
  double cost = 0;
};

bool Allowed(float c, double limit) { return std::isfinite(c) && c < limit; }

// Every partial matching, by recursion over rows.
void BruteForce(const std::vector<float>& cost, int rows, int cols, double limit, int row, std::vector<char>& used,
                Score current, Score& best) {
  const bool finite = std::isfinite(limit);
  if (row == rows) {
    bool better = finite ? current.cost - current.pairs * limit < best.cost - best.pairs * limit - 1e-9
                         : current.pairs > best.pairs || (current.pairs == best.pairs && current.cost < best.cost - 1e-9);
    if (better) best = current;
    return;
  }
  BruteForce(cost, rows, cols, limit, row + 1, used, current, best);  // leave this row unmatched
  for (int c = 0; c < cols; ++c) {
    const float v = cost[row * cols + c];
    if (used[c] || !Allowed(v, limit)) continue;
    used[c] = 1;
    BruteForce(cost, rows, cols, limit, row + 1, used, {current.pairs + 1, current.cost + v}, best);
    used[c] = 0;
  }
}

Score Optimum(const std::vector<float>& cost, int rows, int cols, double limit) {
  std::vector<char> used(cols, 0);
  Score best;
  BruteForce(cost, rows, cols, limit, 0, used, {}, best);
  return best;
}

// The solver's answer is a valid matching of allowed pairs whose reported cost adds up.
void CheckValid(const Assignment& a, const std::vector<float>& cost, int rows, int cols, double limit) {
  ASSERT_EQ(a.row_to_col.size(), static_cast<size_t>(rows));
  ASSERT_EQ(a.col_to_row.size(), static_cast<size_t>(cols));
  double sum = 0;
  int pairs = 0;
  for (int r = 0; r < rows; ++r) {
    const int c = a.row_to_col[r];
    if (c < 0) continue;
    ASSERT_LT(c, cols);
    ASSERT_EQ(a.col_to_row[c], r);
    ASSERT_TRUE(Allowed(cost[r * cols + c], limit)) << "row " << r << " col " << c;
    sum += cost[r * cols + c];
    ++pairs;
  }
  for (int c = 0; c < cols; ++c) {
    if (a.col_to_row[c] >= 0) ASSERT_EQ(a.row_to_col[a.col_to_row[c]], c);
  }
  EXPECT_EQ(pairs, a.matched);
  EXPECT_NEAR(sum, a.matched_cost, 1e-4);
}

TEST(LinearAssignment, EmptyMatrices) {
  for (auto [rows, cols] : {std::pair{0, 0}, {0, 5}, {4, 0}}) {
    auto a = SolveLinearAssignment({}, rows, cols, 0.8);
    EXPECT_EQ(a.matched, 0);
    EXPECT_EQ(a.row_to_col, std::vector<int>(rows, -1));
    EXPECT_EQ(a.col_to_row, std::vector<int>(cols, -1));
  }
}

TEST(LinearAssignment, KnownSquareCase) {
  // The classic 3x3 example: optimum 1 + 2 + 2 = 5 on the anti-diagonal-ish permutation.
  std::vector<float> cost = {4, 1, 3,  //
                             2, 0, 5,  //
                             3, 2, 2};
  auto a = SolveLinearAssignment(cost, 3, 3);
  EXPECT_EQ(a.matched, 3);
  EXPECT_DOUBLE_EQ(a.matched_cost, 5.0);
  EXPECT_EQ(a.row_to_col, (std::vector<int>{1, 0, 2}));
}

TEST(LinearAssignment, CostLimitLeavesExpensivePairsUnmatched) {
  // Matching both pairs costs 0.1 + 0.9, beaten by (0,0) alone with one row and one column left over
  // (0.1 + 0.8/2 * 2 = 0.9 < 1.0); 0.85 is above the limit and never matched.
  std::vector<float> cost = {0.1f, 0.3f,  //
                             0.85f, 0.9f};
  auto a = SolveLinearAssignment(cost, 2, 2, 0.8);
  EXPECT_EQ(a.matched, 1);
  EXPECT_EQ(a.row_to_col, (std::vector<int>{0, -1}));
  // A pair exactly at the limit is not matched.
  std::vector<float> tie = {0.8f};
  EXPECT_EQ(SolveLinearAssignment(tie, 1, 1, 0.8f).matched, 0);
}

TEST(LinearAssignment, InfiniteCostsAreForbidden) {
  std::vector<float> cost = {kInf, 1.f, kInf,  //
                             kInf, 2.f, kInf};
  auto a = SolveLinearAssignment(cost, 2, 3);
  EXPECT_EQ(a.matched, 1);
  EXPECT_EQ(a.col_to_row, (std::vector<int>{-1, 0, -1}));
  std::vector<float> all_inf(12, kInf);
  EXPECT_EQ(SolveLinearAssignment(all_inf, 3, 4).matched, 0);
  EXPECT_EQ(SolveLinearAssignment(all_inf, 3, 4, 0.5).matched, 0);
  // NaN is treated as forbidden too.
  std::vector<float> nan = {std::nanf(""), 0.2f};
  EXPECT_EQ(SolveLinearAssignment(nan, 1, 2, 0.5).row_to_col, (std::vector<int>{1}));
}

TEST(LinearAssignment, NoLimitPrefersMoreMatchesOverLowerCost) {
  // One cheap pair (0,0) blocks a second match; two expensive pairs are the maximum matching.
  std::vector<float> cost = {0.f, 100.f,  //
                             100.f, kInf};
  auto a = SolveLinearAssignment(cost, 2, 2);
  EXPECT_EQ(a.matched, 2);
  EXPECT_EQ(a.row_to_col, (std::vector<int>{1, 0}));
}

// Random matrices up to 8x8, square and rectangular, dense and sparse (forbidden pairs), with and without
// a limit, some with many equal costs: the solver's optimum equals the brute-force one.
TEST(LinearAssignment, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(42);
  int cases = 0;
  for (int rows = 1; rows <= 8; ++rows) {
    for (int cols = 1; cols <= 8; ++cols) {
      const int repeats = rows * cols >= 49 ? 2 : 6;
      for (int rep = 0; rep < repeats; ++rep) {
        const float forbidden_rate = std::uniform_real_distribution<float>(0, 0.7f)(rng);
        const bool integer_costs = rep % 3 == 2;  // ties
        std::vector<float> cost(rows * cols);
        for (auto& c : cost) {
          if (std::uniform_real_distribution<float>(0, 1)(rng) < forbidden_rate) {
            c = kInf;
          } else if (integer_costs) {
            c = static_cast<float>(std::uniform_int_distribution<int>(0, 3)(rng)) / 4.f;
          } else {
            c = std::uniform_real_distribution<float>(0, 1)(rng);
          }
        }
        for (double limit : {0.5, 0.8, std::numeric_limits<double>::infinity()}) {
          SCOPED_TRACE(testing::Message() << rows << "x" << cols << " rep " << rep << " limit " << limit);
          auto a = SolveLinearAssignment(cost, rows, cols, limit);
          CheckValid(a, cost, rows, cols, limit);
          Score best = Optimum(cost, rows, cols, limit);
          if (std::isfinite(limit)) {
            EXPECT_NEAR(a.matched_cost - a.matched * limit, best.cost - best.pairs * limit, 1e-4);
          } else {
            EXPECT_EQ(a.matched, best.pairs);
            EXPECT_NEAR(a.matched_cost, best.cost, 1e-4);
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_GT(cases, 700);
}

TEST(LinearAssignment, SolverObjectIsReusableAcrossSizes) {
  AssignmentSolver solver;
  std::mt19937 rng(7);
  for (int iter = 0; iter < 50; ++iter) {
    const int rows = 1 + iter % 7, cols = 1 + (iter * 3) % 8;
    std::vector<float> cost(rows * cols);
    for (auto& c : cost) c = std::uniform_real_distribution<float>(0, 1)(rng);
    const Assignment& a = solver.Solve(cost, rows, cols, 0.7);
    CheckValid(a, cost, rows, cols, 0.7);
    EXPECT_NEAR(a.matched_cost - a.matched * 0.7, Optimum(cost, rows, cols, 0.7).cost -
                                                      Optimum(cost, rows, cols, 0.7).pairs * 0.7, 1e-4);
  }
}

}  // namespace
}  // namespace vidscan::track
