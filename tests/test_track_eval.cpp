// `vidscan track` end to end, scored by tools/eval_mot.py (py-motmetrics) against ground truth and
// against the plain IoU tracker on the same detections.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sink/mot_format.h"
#include "support/test_support.h"
#include "track/synthetic_scene.h"

namespace vidscan {
namespace {


#define VS_REQUIRE_MOTMETRICS(python)                                                                    \
  const std::string python = testing::EvalPython();                                                              \
  if (testing::RunCommand(python + " -c 'import motmetrics' 2>/dev/null") != 0)                          \
  GTEST_SKIP() << "motmetrics is not importable by " << python                                          \
               << " (scripts/setup-eval-env.sh installs it into build/eval-venv; CI runs it)"

struct Scores {
  nlohmann::json tracker, baseline;
};

// Runs vidscan track, then eval_mot.py; fails the test (and returns nullopt) on any error.
std::optional<Scores> TrackAndScore(const std::string& python, const std::string& det, const std::string& gt,
                                    const std::string& track_args) {
  const std::string dir = testing::TempDir("track-eval");
  const std::string result = dir + "/result.txt", report = dir + "/report.json";
  std::string out;
  const std::string track_cmd =
      fmt::format("'{}' track '{}' -o '{}' {} 2>&1", testing::VidscanBinary(), det, result, track_args);
  int rc = testing::RunCommand(track_cmd, &out);
  EXPECT_EQ(rc, 0) << track_cmd << "\n" << out;
  if (rc != 0) return std::nullopt;
  std::cout << out;
  const std::string eval_cmd = fmt::format("'{}' '{}/tools/eval_mot.py' --gt '{}' --det '{}' --result '{}' --json '{}' 2>&1",
                                           python, testing::SourceDir(), gt, det, result, report);
  rc = testing::RunCommand(eval_cmd, &out);
  EXPECT_EQ(rc, 0) << eval_cmd << "\n" << out;
  if (rc != 0) return std::nullopt;
  std::cout << out;
  std::ifstream in(report);
  auto j = nlohmann::json::parse(in);
  return Scores{j["bytetrack"], j["iou_baseline"]};
}

TEST(TrackCommand, UnreadableInputIsOneLineNamingFileAndLine) {
  const std::string dir = testing::TempDir("track-cli");
  {
    std::ofstream bad(dir + "/det.txt");
    bad << "1,-1,10,20,30,40,0.9\n2,-1,10,20,30\n";
  }
  std::string out;
  int rc = testing::RunCommand(fmt::format("'{}' track '{}/det.txt' -o '{}/res.txt' 2>&1", testing::VidscanBinary(), dir, dir), &out);
  EXPECT_EQ(rc, 4);
  EXPECT_EQ(out, fmt::format("error: {}/det.txt:2: expected at least 7 fields (frame,id,x,y,w,h,score), found 5\n", dir));
  rc = testing::RunCommand(fmt::format("'{}' track '{}/missing.txt' 2>&1", testing::VidscanBinary(), dir), &out);
  EXPECT_EQ(rc, 4);
  EXPECT_EQ(out, fmt::format("error: {}/missing.txt: cannot open: No such file or directory\n", dir));
}

// A generated scene with known identities, written as MOT gt.txt and det.txt.
TEST(TrackEval, ByteTrackBeatsIouTrackerOnSyntheticScene) {
  VS_REQUIRE_MOTMETRICS(python);
  track::SyntheticSceneParams p;
  p.objects = 25;
  p.seed = 11;
  p.miss_rate = 0.1f;
  auto scene = track::MakeSyntheticScene(p);
  const std::string dir = testing::TempDir("synthetic-mot");
  {
    std::ofstream gt(dir + "/gt.txt"), det(dir + "/det.txt");
    for (size_t f = 0; f < scene.size(); ++f) {
      const int64_t frame = static_cast<int64_t>(f) + 1;
      for (size_t i = 0; i < scene[f].gt_ids.size(); ++i) {
        const auto& b = scene[f].gt_boxes[i];
        gt << FormatMotLine({frame, scene[f].gt_ids[i], b.x, b.y, b.w, b.h, 1.f});
      }
      for (const auto& d : scene[f].detections) {
        det << FormatMotLine({frame, -1, d.box.x, d.box.y, d.box.w, d.box.h, d.score});
      }
    }
  }
  auto s = TrackAndScore(python, dir + "/det.txt", dir + "/gt.txt", "--fps 30");
  ASSERT_TRUE(s);
  const double mota = s->tracker["mota"], idf1 = s->tracker["idf1"];
  // Measured: MOTA 0.836, IDF1 0.871, 4 switches; the IoU tracker 0.768, 0.134, 623 (it fragments at
  // every missed detection).
  EXPECT_GE(mota, 0.8);
  EXPECT_GE(idf1, 0.85);
  EXPECT_GT(mota, s->baseline["mota"].get<double>());
  EXPECT_GT(idf1, s->baseline["idf1"].get<double>());
  EXPECT_LT(s->tracker["num_switches"].get<double>(), s->baseline["num_switches"].get<double>());
}

// The public PETS09-S2L1 sequence (MOTChallenge 2015, 7 fps) with its public detections.
TEST(TrackEval, Pets09S2L1AgainstGroundTruth) {
  VS_REQUIRE_DATA(det, "mot/PETS09-S2L1/det/det.txt");
  auto gt = testing::DataFile("mot/PETS09-S2L1/gt/gt.txt");
  if (!gt) {
    GTEST_SKIP() << "ground truth mot/PETS09-S2L1/gt/gt.txt is not in " << testing::DataDir()
                 << " yet (it arrives with a later update of the shared data); this test then checks "
                    "ByteTrack's MOTA and IDF1 against the IoU tracker and 0.5";
  }
  VS_REQUIRE_MOTMETRICS(python);
  auto s = TrackAndScore(python, det, *gt, "--fps 7");
  ASSERT_TRUE(s);
  const double mota = s->tracker["mota"], idf1 = s->tracker["idf1"];
  EXPECT_GE(mota, 0.5);
  EXPECT_GE(idf1, 0.5);
  EXPECT_GE(mota, s->baseline["mota"].get<double>());
  EXPECT_GE(idf1, s->baseline["idf1"].get<double>());
}

}  // namespace
}  // namespace vidscan
