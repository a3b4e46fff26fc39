#include "track/linear_assignment.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace vidscan::track {
namespace {

int FindRoot(std::vector<int>& parent, int x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

}  // namespace

Assignment SolveLinearAssignment(std::span<const float> cost, int rows, int cols, double cost_limit) {
  AssignmentSolver solver;
  return solver.Solve(cost, rows, cols, cost_limit);
}

const Assignment& AssignmentSolver::Solve(std::span<const float> cost, int rows, int cols, double cost_limit) {
  assert(rows >= 0 && cols >= 0 && cost.size() >= static_cast<size_t>(rows) * cols);
  result_.row_to_col.assign(rows, -1);
  result_.col_to_row.assign(cols, -1);
  result_.matched_cost = 0;
  result_.matched = 0;
  if (rows == 0 || cols == 0) return result_;

  const bool limit_is_finite = std::isfinite(cost_limit);
  auto allowed = [&](float c) { return std::isfinite(c) && c < cost_limit; };

  // Components of the graph of allowed pairs (rows are nodes 0..rows-1, columns rows..rows+cols-1).
  const int nodes = rows + cols;
  parent_.resize(nodes);
  for (int i = 0; i < nodes; ++i) parent_[i] = i;
  double min_cost = std::numeric_limits<double>::infinity(), max_cost = -min_cost;
  bool any = false;
  for (int r = 0; r < rows; ++r) {
    const float* row = cost.data() + static_cast<size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) {
      if (!allowed(row[c])) continue;
      any = true;
      min_cost = std::min(min_cost, static_cast<double>(row[c]));
      max_cost = std::max(max_cost, static_cast<double>(row[c]));
      int a = FindRoot(parent_, r), b = FindRoot(parent_, rows + c);
      if (a != b) parent_[a] = b;
    }
  }
  if (!any) return result_;
  // Without a limit, a reward per matched pair large enough that one more pair always beats any saving in
  // cost turns "maximum cardinality, then minimum cost" into one maximum-weight problem.
  const double big_reward =
      limit_is_finite ? cost_limit : max_cost + (std::min(rows, cols) + 1) * (max_cost - min_cost) + 1.0;

  // Group rows and columns by component (counting sort on the component index).
  root_to_comp_.assign(nodes, -1);
  node_comp_.resize(nodes);
  row_start_.clear();
  col_start_.clear();
  int components = 0;
  for (int i = 0; i < nodes; ++i) {
    int root = FindRoot(parent_, i);
    if (root_to_comp_[root] < 0) {
      root_to_comp_[root] = components++;
      row_start_.push_back(0);
      col_start_.push_back(0);
    }
    int k = root_to_comp_[root];
    node_comp_[i] = k;
    ++(i < rows ? row_start_[k] : col_start_[k]);
  }
  // Counts -> exclusive prefix sums (size components + 1).
  auto counts_to_starts = [&](std::vector<int>& v) {
    int sum = 0;
    for (int& x : v) {
      int count = x;
      x = sum;
      sum += count;
    }
    v.push_back(sum);
  };
  counts_to_starts(row_start_);
  counts_to_starts(col_start_);
  rows_in_comp_.resize(rows);
  cursor_.assign(row_start_.begin(), row_start_.end() - 1);
  for (int r = 0; r < rows; ++r) rows_in_comp_[cursor_[node_comp_[r]]++] = r;
  cols_in_comp_.resize(cols);
  cursor_.assign(col_start_.begin(), col_start_.end() - 1);
  for (int c = 0; c < cols; ++c) cols_in_comp_[cursor_[node_comp_[rows + c]]++] = c;

  for (int k = 0; k < components; ++k) {
    const int r0 = row_start_[k], nr = row_start_[k + 1] - r0;
    const int c0 = col_start_[k], nc = col_start_[k + 1] - c0;
    if (nr == 0 || nc == 0) continue;  // an isolated row or column: nothing allowed
    const int* comp_rows = rows_in_comp_.data() + r0;
    const int* comp_cols = cols_in_comp_.data() + c0;
    auto cost_at = [&](int i, int j) { return cost[static_cast<size_t>(comp_rows[i]) * cols + comp_cols[j]]; };
    if (nr == 1 || nc == 1) {
      // A star: the best single allowed pair is optimal (at most one pair can be matched).
      int best_i = -1, best_j = -1;
      float best = 0;
      for (int i = 0; i < nr; ++i) {
        for (int j = 0; j < nc; ++j) {
          float c = cost_at(i, j);
          if (allowed(c) && (best_i < 0 || c < best)) best = c, best_i = i, best_j = j;
        }
      }
      int r = comp_rows[best_i], c = comp_cols[best_j];
      result_.row_to_col[r] = c;
      result_.col_to_row[c] = r;
      result_.matched_cost += best;
      ++result_.matched;
      continue;
    }
    // Hungarian method (shortest augmenting paths with potentials) on an n x n square, n = max(nr, nc):
    // an allowed pair costs -(reward - cost) < 0, everything else (forbidden or padding) costs 0 and
    // means "unmatched".
    const int n = std::max(nr, nc);
    square_.assign(static_cast<size_t>(n) * n, 0.0);
    for (int i = 0; i < nr; ++i) {
      for (int j = 0; j < nc; ++j) {
        float c = cost_at(i, j);
        if (allowed(c)) square_[static_cast<size_t>(i) * n + j] = -(big_reward - static_cast<double>(c));
      }
    }
    const double inf = std::numeric_limits<double>::infinity();
    u_.assign(n + 1, 0.0);
    v_.assign(n + 1, 0.0);
    p_.assign(n + 1, 0);  // p_[j]: 1-based row assigned to 1-based column j
    way_.assign(n + 1, 0);
    for (int i = 1; i <= n; ++i) {
      p_[0] = i;
      int j0 = 0;
      minv_.assign(n + 1, inf);
      used_.assign(n + 1, 0);
      do {
        used_[j0] = 1;
        const int i0 = p_[j0];
        double delta = inf;
        int j1 = 0;
        const double* arow = square_.data() + static_cast<size_t>(i0 - 1) * n;
        for (int j = 1; j <= n; ++j) {
          if (used_[j]) continue;
          double cur = arow[j - 1] - u_[i0] - v_[j];
          if (cur < minv_[j]) minv_[j] = cur, way_[j] = j0;
          if (minv_[j] < delta) delta = minv_[j], j1 = j;
        }
        for (int j = 0; j <= n; ++j) {
          if (used_[j]) {
            u_[p_[j]] += delta;
            v_[j] -= delta;
          } else {
            minv_[j] -= delta;
          }
        }
        j0 = j1;
      } while (p_[j0] != 0);
      do {
        int j1 = way_[j0];
        p_[j0] = p_[j1];
        j0 = j1;
      } while (j0);
    }
    for (int j = 1; j <= n; ++j) {
      const int i = p_[j] - 1, jj = j - 1;
      if (i >= nr || jj >= nc) continue;
      float c = cost_at(i, jj);
      if (!allowed(c)) continue;
      int r = comp_rows[i], col = comp_cols[jj];
      result_.row_to_col[r] = col;
      result_.col_to_row[col] = r;
      result_.matched_cost += c;
      ++result_.matched;
    }
  }
  return result_;
}

}  // namespace vidscan::track
