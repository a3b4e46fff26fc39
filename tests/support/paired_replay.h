// Kernel v3 (src/preprocess/paired_rows.h, preprocess_paired.cuh) replayed on the CPU: the kernel's work
// split (blocks of units, segments, warps' rows, groups of 32 row taps), its pair table, its staging pieces
// (lane by lane, into a stage poisoned for every row, so a tap outside the staged bytes shows) and every
// lane's pairs, with the same integer and float operations as the GPU (paired_rows.h gives PRMT and DP2A
// exact host twins). The CPU tests compare it with the reference within v3's tolerance; the GPU test
// compares the kernel with it bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "preprocess/frame_descriptor.h"
#include "preprocess/paired_rows.h"
#include "preprocess/staged_rows.h"

namespace vidscan::test {

// Replays one v3 launch over `frames` (all accepted by PairedKernelTakes) with a grid of `blocks` blocks;
// the output goes where the descriptors' `out` point.
template <typename Shape, typename Out, bool kNhwc, bool kBgr>
void ReplayPairedLaunch(const PreprocessParams& p, const std::vector<preprocess_detail::FrameDescriptor>& frames,
                        int blocks) {
  using namespace preprocess_detail;
  constexpr int kCapacity = Shape::kStageRowCapacity;
  const int ranges = (p.width + Shape::kColumns - 1) / Shape::kColumns;
  const long long units = static_cast<long long>(frames.size()) * ranges * p.height;
  std::vector<PairTapsWhere> where(Shape::kPairs);
  std::vector<PairTapsWeights> weights(Shape::kPairs);
  std::vector<uint8_t> stage(4 * kCapacity);
  for (int block = 0; block < blocks; ++block) {
    ForEachPairedSegment(units, block, blocks, ranges, p.height, [&](const PairedSegment& s) {
      const FrameDescriptor& d = frames[s.frame];
      const int x_begin = s.range * Shape::kColumns;
      const int count = std::min(Shape::kColumns, p.width - x_begin);
      const StagedWindow w = MakeStagedWindow<uint8_t>(d, x_begin, count);
      ASSERT_TRUE(w.Fits(kCapacity - 8)) << "window " << w.luma_end - w.luma_begin << " / " << w.chroma_end - w.chroma_begin;
      std::memset(where.data(), 0xee, where.size() * sizeof(PairTapsWhere));  // a missed entry shows
      std::memset(weights.data(), 0xee, weights.size() * sizeof(PairTapsWeights));
      for (int pair = 0; pair < count / 2; ++pair) {
        ASSERT_TRUE(MakePairTaps(d, w, x_begin, pair, &where[pair], &weights[pair])) << "pair " << pair << " of range " << s.range;
      }
      const int pairs = count / 2;
      const bool masked = PairedRangeMasked(w, x_begin, count);
      for (int warp = 0; warp < Shape::kWarps; ++warp) {
        int first, rows;
        PairedWarpRows(s.rows, warp, Shape::kWarps, &first, &rows);
        for (int group = 0; group < rows; group += 32) {
          const int n = std::min(32, rows - group);
          const int oy_group = s.oy_begin + first + group;
          std::vector<PairedRowTaps> taps;
          for (int lane = 0; lane < n; ++lane) taps.push_back(MakePairedRowTaps(d, w, oy_group + lane));
          std::vector<PairedRowOut<Out, kNhwc>> outs;
          for (int lane = 0; lane < 32; ++lane) outs.emplace_back(d, p.width, p.height, oy_group, x_begin, lane);
          for (int r = 0; r < n; ++r) {
            const PairedRowTaps& t = taps[r];
            std::fill(stage.begin(), stage.end(), uint8_t{0xa5});
            if (t.inside) {
              for (int lane = 0; lane < 32; ++lane) {
                PairedStager<kCapacity>(d, w, lane).Stage(t, stage.data(), [](uint8_t* dst, const uint8_t* src) {
                  std::memcpy(dst, src, 16);
                });
              }
            }
            for (int lane = 0; lane < 32; ++lane) {
              const auto& o = outs[lane];
              constexpr int kPerLane = Shape::kPairsPerLane;
              if (!t.inside) {
                PairedPadRow<Out, kNhwc, kPerLane>(d, o, pairs, lane);
              } else if (masked) {
                PairedRowPixels<Out, kNhwc, kBgr, true, false, kPerLane, kCapacity>(d, w, t, stage.data(), where.data(),
                                                                                    weights.data(), o, x_begin, pairs, lane);
              } else if (pairs == Shape::kPairs) {
                PairedRowPixels<Out, kNhwc, kBgr, false, true, kPerLane, kCapacity>(d, w, t, stage.data(), where.data(),
                                                                                    weights.data(), o, x_begin, pairs, lane);
              } else {
                PairedRowPixels<Out, kNhwc, kBgr, false, false, kPerLane, kCapacity>(
                    d, w, t, stage.data(), where.data(), weights.data(), o, x_begin, pairs, lane);
              }
            }
            for (auto& o : outs) o.NextRow(p.width);
          }
        }
      }
    });
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The same for the launch's output type, layout and channel order (Out for FP16 is the half's bits).
template <typename Shape>
void ReplayPairedLaunch(const PreprocessParams& p, const std::vector<preprocess_detail::FrameDescriptor>& frames,
                        int blocks) {
  const bool nhwc = p.layout == TensorLayout::kNHWC, bgr = p.order == ChannelOrder::kBGR;
  if (p.type == TensorType::kFloat32) {
    if (nhwc) {
      bgr ? ReplayPairedLaunch<Shape, float, true, true>(p, frames, blocks)
          : ReplayPairedLaunch<Shape, float, true, false>(p, frames, blocks);
    } else {
      bgr ? ReplayPairedLaunch<Shape, float, false, true>(p, frames, blocks)
          : ReplayPairedLaunch<Shape, float, false, false>(p, frames, blocks);
    }
  } else if (nhwc) {
    bgr ? ReplayPairedLaunch<Shape, uint16_t, true, true>(p, frames, blocks)
        : ReplayPairedLaunch<Shape, uint16_t, true, false>(p, frames, blocks);
  } else {
    bgr ? ReplayPairedLaunch<Shape, uint16_t, false, true>(p, frames, blocks)
        : ReplayPairedLaunch<Shape, uint16_t, false, false>(p, frames, blocks);
  }
}

}  // namespace vidscan::test
