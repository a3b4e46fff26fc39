#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include "track/byte_tracker.h"
#include "track/synthetic_scene.h"

namespace vidscan::track {
namespace {

Detection Det(float x, float y, float score = 0.9f, float w = 40, float h = 100) { return {{x, y, w, h}, score}; }

std::vector<TrackedObject> Step(ByteTracker& tracker, int64_t frame, const std::vector<Detection>& dets) {
  std::vector<TrackedObject> out;
  EXPECT_TRUE(tracker.Update(frame, dets, &out).ok());
  return out;
}

TEST(ByteTracker, FirstFrameConfirmsAtOnceLaterTracksNeedASecondMatch) {
  ByteTracker tracker;
  auto out = Step(tracker, 1, {Det(100, 100), Det(400, 100), Det(700, 100, 0.65f)});
  // 0.65 is a high box (> 0.6) but below the new-track threshold 0.7.
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].track_id, 1);
  EXPECT_EQ(out[1].track_id, 2);
  EXPECT_EQ(out[0].detection_index, 0);
  // A newcomer on frame 2 is not reported until it is matched again on frame 3.
  out = Step(tracker, 2, {Det(102, 100), Det(402, 100), Det(1000, 500)});
  EXPECT_EQ(out.size(), 2u);
  out = Step(tracker, 3, {Det(104, 100), Det(404, 100), Det(1001, 500)});
  ASSERT_EQ(out.size(), 3u);
  std::set<int64_t> ids;
  for (auto& t : out) ids.insert(t.track_id);
  EXPECT_EQ(ids, (std::set<int64_t>{1, 2, 3}));
}

TEST(ByteTracker, UnconfirmedTrackThatMissesOnceIsDropped) {
  ByteTracker tracker;
  Step(tracker, 1, {});
  Step(tracker, 2, {Det(500, 500)});           // unconfirmed
  EXPECT_TRUE(Step(tracker, 3, {}).empty());   // missed: removed
  EXPECT_EQ(tracker.live_tracks(), 0u);
  EXPECT_TRUE(Step(tracker, 4, {Det(500, 500)}).empty());  // starts over, unconfirmed again
  auto out = Step(tracker, 5, {Det(500, 500)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].track_id, 1);  // ids count confirmed tracks only
}

TEST(ByteTracker, LowScoreBoxesExtendTracksButNeverStartThem) {
  ByteTracker tracker;
  Step(tracker, 1, {Det(100, 100)});
  // A low box (0.3) continues track 1 (second association); the other low box starts nothing.
  auto out = Step(tracker, 2, {Det(1000, 100, 0.3f), Det(103, 101, 0.3f)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].track_id, 1);
  EXPECT_EQ(out[0].detection_index, 1);
  EXPECT_FLOAT_EQ(out[0].score, 0.3f);
  out = Step(tracker, 3, {Det(1000, 100, 0.3f), Det(106, 102, 0.3f)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(tracker.live_tracks(), 1u);
  // Boxes at or below the low threshold are ignored: the track goes lost.
  EXPECT_TRUE(Step(tracker, 4, {Det(109, 103, 0.1f)}).empty());
}

// An object walking right at 4 px/frame vanishes for `gap` frames and reappears on its path.
int64_t IdAfterOcclusion(ByteTrackParams params, int gap, int every = 1) {
  ByteTracker tracker(params);
  int64_t frame = 1, id = -1;
  for (; frame <= 40; frame += every) {
    auto out = Step(tracker, frame, {Det(100 + 4.f * frame, 300)});
    EXPECT_EQ(out.size(), 1u);
    id = out.at(0).track_id;
  }
  for (int64_t end = frame + gap; frame < end; frame += every) EXPECT_TRUE(Step(tracker, frame, {}).empty());
  // Reappearing: a newly started track needs two frames to be reported, a recovered one is back at once.
  auto out = Step(tracker, frame, {Det(100 + 4.f * frame, 300)});
  if (out.empty()) return 0;
  EXPECT_EQ(out.size(), 1u);
  return out[0].track_id == id ? id : -out[0].track_id;
}

TEST(ByteTracker, KeepsIdentityThroughShortOcclusionOnly) {
  ByteTrackParams params;  // 30 fps, buffer 30 frames
  EXPECT_EQ(IdAfterOcclusion(params, 10), 1);
  EXPECT_EQ(IdAfterOcclusion(params, 30), 1);
  EXPECT_EQ(IdAfterOcclusion(params, 35), 0);  // dropped: the reappearance is a new, unconfirmed track
  params.frame_rate = 7;  // the buffer is one second: 7 frames
  EXPECT_EQ(params.MaxFramesLost(), 7);
  EXPECT_EQ(IdAfterOcclusion(params, 6), 1);
  EXPECT_EQ(IdAfterOcclusion(params, 9), 0);
}

TEST(ByteTracker, SampledFramesCountRealTime) {
  ByteTrackParams params;
  // Every 5th frame analysed: 20 px per analysed frame for a 40 px wide box, which only a filter that
  // predicts across the skipped frames follows. The buffer still means 30 frames of the stream.
  EXPECT_EQ(IdAfterOcclusion(params, 25, 5), 1);
  EXPECT_EQ(IdAfterOcclusion(params, 40, 5), 0);
}

TEST(ByteTracker, RejectsFrameIndicesThatDoNotIncrease) {
  ByteTracker tracker;
  std::vector<TrackedObject> out;
  ASSERT_TRUE(tracker.Update(5, {}, &out).ok());
  Status st = tracker.Update(5, {}, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("frame index 5"), std::string::npos);
}

TEST(ByteTracker, IgnoresDegenerateBoxes) {
  ByteTracker tracker;
  std::vector<Detection> dets = {Det(10, 10, 0.9f, 0, 50), Det(10, 10, 0.9f, 20, -1),
                                 Det(std::nanf(""), 10, 0.9f), Det(10, 10, 0.9f)};
  auto out = Step(tracker, 1, dets);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].detection_index, 3);
}

// CLEAR-MOT and IDF1 with IoU >= 0.5 as a match, as py-motmetrics computes them.
struct Metrics {
  double mota = 0, idf1 = 0;
  int switches = 0, misses = 0, false_positives = 0, gt = 0;
};

Metrics Score(const std::vector<SyntheticFrame>& scene, const std::map<int64_t, std::vector<TrackedObject>>& results) {
  Metrics m;
  std::map<int, int64_t> last_match;                       // gt id -> hypothesis id last matched
  std::map<std::pair<int, int64_t>, int> overlap_frames;   // for IDF1
  std::map<int, int> gt_count;
  std::map<int64_t, int> hyp_count;
  AssignmentSolver solver;
  for (size_t f = 0; f < scene.size(); ++f) {
    auto it = results.find(static_cast<int64_t>(f) + 1);
    if (it == results.end()) continue;  // frame not analysed: not scored
    const auto& hyps = it->second;
    const auto& gt = scene[f];
    const int ng = gt.gt_ids.size(), nh = hyps.size();
    std::vector<float> cost(ng * nh);
    for (int g = 0; g < ng; ++g) {
      ++gt_count[gt.gt_ids[g]];
      for (int h = 0; h < nh; ++h) {
        const float iou = Iou(gt.gt_boxes[g], hyps[h].box);
        cost[g * nh + h] = iou >= 0.5f ? 1.f - iou : std::numeric_limits<float>::infinity();
        if (iou >= 0.5f) ++overlap_frames[{gt.gt_ids[g], hyps[h].track_id}];
      }
      // CLEAR MOT keeps last frame's correspondence when it still holds.
      auto lm = last_match.find(gt.gt_ids[g]);
      for (int h = 0; h < nh && lm != last_match.end(); ++h) {
        if (hyps[h].track_id == lm->second && std::isfinite(cost[g * nh + h])) cost[g * nh + h] = -1.f;
      }
    }
    for (const auto& h : hyps) ++hyp_count[h.track_id];
    const Assignment& a = solver.Solve(cost, ng, nh, 1.0);
    m.gt += ng;
    m.misses += ng - a.matched;
    m.false_positives += nh - a.matched;
    for (int g = 0; g < ng; ++g) {
      if (a.row_to_col[g] < 0) continue;
      const int64_t hid = hyps[a.row_to_col[g]].track_id;
      auto [pos, inserted] = last_match.try_emplace(gt.gt_ids[g], hid);
      if (!inserted && pos->second != hid) ++m.switches, pos->second = hid;
    }
  }
  m.mota = 1.0 - static_cast<double>(m.misses + m.false_positives + m.switches) / m.gt;
  // IDF1: the one-to-one gt/hypothesis identity mapping with the most co-located frames.
  std::vector<int> gids;
  std::vector<int64_t> hids;
  for (auto& [g, n] : gt_count) gids.push_back(g);
  for (auto& [h, n] : hyp_count) hids.push_back(h);
  std::vector<float> cost(gids.size() * hids.size(), std::numeric_limits<float>::infinity());
  for (auto& [key, n] : overlap_frames) {
    const size_t gi = std::lower_bound(gids.begin(), gids.end(), key.first) - gids.begin();
    const size_t hi = std::lower_bound(hids.begin(), hids.end(), key.second) - hids.begin();
    cost[gi * hids.size() + hi] = -static_cast<float>(n);
  }
  const Assignment& a = solver.Solve(cost, gids.size(), hids.size(), 0.0);
  const double idtp = -a.matched_cost;
  int total_hyp = 0;
  for (auto& [h, n] : hyp_count) total_hyp += n;
  m.idf1 = 2 * idtp / (m.gt + total_hyp);
  return m;
}

Metrics RunScene(const std::vector<SyntheticFrame>& scene, int every) {
  ByteTracker tracker;
  std::map<int64_t, std::vector<TrackedObject>> results;
  for (size_t f = 0; f < scene.size(); f += every) {
    const int64_t frame = static_cast<int64_t>(f) + 1;
    EXPECT_TRUE(tracker.Update(frame, scene[f].detections, &results[frame]).ok());
  }
  return Score(scene, results);
}

// The scorer itself: perfect tracks score 1; swapping two identities halfway costs switches and IDF1.
TEST(ByteTrackerScene, ScorerSeesPerfectAndSwappedIdentities) {
  SyntheticSceneParams p;
  p.objects = 4;
  p.frames = 40;
  auto scene = MakeSyntheticScene(p);
  std::map<int64_t, std::vector<TrackedObject>> perfect, swapped;
  for (size_t f = 0; f < scene.size(); ++f) {
    for (size_t i = 0; i < scene[f].gt_ids.size(); ++i) {
      int64_t id = scene[f].gt_ids[i];
      perfect[f + 1].push_back({id, scene[f].gt_boxes[i], 1.f, -1});
      if (f >= 20 && id <= 2) id = 3 - id;
      swapped[f + 1].push_back({id, scene[f].gt_boxes[i], 1.f, -1});
    }
  }
  Metrics a = Score(scene, perfect);
  EXPECT_DOUBLE_EQ(a.mota, 1.0);
  EXPECT_DOUBLE_EQ(a.idf1, 1.0);
  Metrics b = Score(scene, swapped);
  EXPECT_EQ(b.switches, 2);
  EXPECT_NEAR(b.idf1, 0.75, 1e-9);
}

// End to end on generated scenes: noise, misses, low scores while occluded, false positives, crossings.
// Identities must survive: few switches, high IDF1. The bounds hold with margin over several seeds.
TEST(ByteTrackerScene, KeepsIdentitiesOnSyntheticScenes) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    SyntheticSceneParams p;
    p.seed = seed;
    auto scene = MakeSyntheticScene(p);
    Metrics m = RunScene(scene, 1);
    SCOPED_TRACE(testing::Message() << "seed " << seed << ": MOTA " << m.mota << " IDF1 " << m.idf1 << " IDsw "
                                    << m.switches << " FN " << m.misses << " FP " << m.false_positives << " of "
                                    << m.gt);
    EXPECT_GE(m.mota, 0.85);
    EXPECT_GE(m.idf1, 0.85);
    EXPECT_LE(m.switches, 10);
    std::cout << "seed " << seed << ": MOTA " << m.mota << " IDF1 " << m.idf1 << " IDsw " << m.switches
              << " FN " << m.misses << " FP " << m.false_positives << " of " << m.gt << "\n";
  }
}

TEST(ByteTrackerScene, KeepsIdentitiesWhenOnlyEveryThirdFrameIsAnalysed) {
  SyntheticSceneParams p;
  p.seed = 4;
  auto scene = MakeSyntheticScene(p);
  Metrics m = RunScene(scene, 3);
  std::cout << "every 3rd: MOTA " << m.mota << " IDF1 " << m.idf1 << " IDsw " << m.switches << "\n";
  EXPECT_GE(m.mota, 0.8);
  EXPECT_GE(m.idf1, 0.8);
  EXPECT_LE(m.switches, 10);
}

}  // namespace
}  // namespace vidscan::track
