// Exact minimum-cost linear assignment for rectangular cost matrices with a cost limit: the problem
// ByteTrack hands to lap.lapjv(cost, extend_cost=True, cost_limit=L).
#pragma once

#include <limits>
#include <span>
#include <vector>

namespace vidscan::track {

struct Assignment {
  std::vector<int> row_to_col;  // -1: row left unmatched
  std::vector<int> col_to_row;  // -1: column left unmatched
  double matched_cost = 0;      // sum of the costs of the matched pairs
  int matched = 0;
};

// `cost` is row-major rows x cols. A pair may be matched only when its cost is finite and strictly below
// `cost_limit`; +inf (or NaN) marks a forbidden pair.
//
// With a finite cost_limit L the result minimises  sum(matched costs) + L * (unmatched rows + unmatched
// cols) / 2, which is what lap.lapjv's extended square problem minimises: a pair is worth matching only
// when its cost beats leaving both ends unmatched. (At an exact tie, cost == L, lap may match or not; here
// such a pair is never matched.)
//
// With cost_limit = +inf the result is a maximum-cardinality matching of the allowed pairs and, among
// those, one of minimum total cost: the classic rectangular assignment (min(rows, cols) pairs when
// every pair is allowed).
//
// Algorithm: the allowed pairs are split into connected components (rows and columns joined by an
// allowed pair); each component is solved on its own, which is exact because the objective is a sum over
// components. Single pairs and stars are solved directly, larger components by the O(n^3)
// shortest-augmenting-path Hungarian method with potentials on a max(r, c) square padded with "leave
// unmatched" entries. Tracking scenes give mostly tiny components, so a frame costs little more than
// building the matrix.
Assignment SolveLinearAssignment(std::span<const float> cost, int rows, int cols,
                                 double cost_limit = std::numeric_limits<double>::infinity());

// Scratch buffers reused across calls by hot loops (one per tracker): avoids per-frame allocation.
class AssignmentSolver {
 public:
  // Same contract as SolveLinearAssignment; the result lives until the next call.
  const Assignment& Solve(std::span<const float> cost, int rows, int cols,
                          double cost_limit = std::numeric_limits<double>::infinity());

 private:
  Assignment result_;
  // Component grouping: union-find parents, root -> component, node -> component, per-component row and
  // column ranges into rows_in_comp_ / cols_in_comp_.
  std::vector<int> parent_, root_to_comp_, node_comp_, row_start_, col_start_, cursor_;
  std::vector<int> rows_in_comp_, cols_in_comp_;
  std::vector<double> square_, u_, v_, minv_;
  std::vector<int> p_, way_;
  std::vector<char> used_;
};

}  // namespace vidscan::track
