#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "sink/video_results.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {


std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

VideoResultHeader MakeHeader() {
  VideoResultHeader h;
  h.path = "videos/cam1.avi";
  h.key = "cam1.avi";
  h.class_names = {"person", "car"};
  h.info.container = "avi";
  h.info.codec_name = "h264";
  h.info.profile = "High";
  h.info.width = 1280;
  h.info.height = 720;
  h.info.fps = 25;
  h.info.duration_seconds = 10;
  h.sampling = "every:3";
  h.model = "peoplenet.onnx";
  return h;
}

// Four analysed frames: tracked and untracked boxes, an empty frame, a class id beyond the names.
std::vector<FrameResult> MakeFrames() {
  return {
      {0, 0.0, {{0, 0.87314f, 10.004f, 20.5f, 110.25f, 220.0f, 3}, {1, 0.5f, 0, 0, 50, 40, -1}}},
      {3, 0.12, {}},
      {6, 0.24, {{0, 0.9f, 12, 22, 112, 222, 3}, {0, 0.61f, 300, 100, 350, 200, 7}, {5, 0.3f, 1, 2, 3, 4, -1}}},
      {9, 0.36, {{0, 0.7f, 302, 101, 352, 203, 7}, {1, 0.55f, 5.5f, 6.25f, 20, 30, 9}}},
  };
}

VideoCompletion MakeCompletion() {
  VideoCompletion done;
  done.decode.packets = 10;
  done.decode.frames_decoded = 10;
  done.decoded_video_seconds = 0.4;
  return done;
}

void WriteAll(VideoResultWriter& writer) {
  for (const FrameResult& f : MakeFrames()) ASSERT_TRUE(writer.Write(f).ok());
}

TEST(VideoResults, WritesExactDetectionsTracksAndSummary) {
  const std::string dir = testing::TempDir("results") + "/videos/cam1.avi";  // created by Open
  auto writer = VideoResultWriter::Open(dir, MakeHeader());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  WriteAll(*writer);
  // Nothing under a final name before Commit.
  EXPECT_EQ(FilesIn(dir), (std::vector<std::string>{".detections.jsonl.partial", ".tracks.txt.partial"}));
  ASSERT_TRUE(writer->Commit(MakeCompletion()).ok());
  EXPECT_EQ(FilesIn(dir), (std::vector<std::string>{"detections.jsonl", "summary.json", "tracks.txt"}));

  EXPECT_EQ(testing::ReadFile(fs::path(dir) / "detections.jsonl"),
            "{\"frame\":0,\"pts\":0.0,\"detections\":["
            "{\"class\":\"person\",\"class_id\":0,\"score\":0.8731,\"box\":[10.00,20.50,110.25,220.00],\"track_id\":3},"
            "{\"class\":\"car\",\"class_id\":1,\"score\":0.5000,\"box\":[0.00,0.00,50.00,40.00]}]}\n"
            "{\"frame\":3,\"pts\":0.12,\"detections\":[]}\n"
            "{\"frame\":6,\"pts\":0.24,\"detections\":["
            "{\"class\":\"person\",\"class_id\":0,\"score\":0.9000,\"box\":[12.00,22.00,112.00,222.00],\"track_id\":3},"
            "{\"class\":\"person\",\"class_id\":0,\"score\":0.6100,\"box\":[300.00,100.00,350.00,200.00],\"track_id\":7},"
            "{\"class\":\"class_5\",\"class_id\":5,\"score\":0.3000,\"box\":[1.00,2.00,3.00,4.00]}]}\n"
            "{\"frame\":9,\"pts\":0.36,\"detections\":["
            "{\"class\":\"person\",\"class_id\":0,\"score\":0.7000,\"box\":[302.00,101.00,352.00,203.00],\"track_id\":7},"
            "{\"class\":\"car\",\"class_id\":1,\"score\":0.5500,\"box\":[5.50,6.25,20.00,30.00],\"track_id\":9}]}\n");
  // Every line is valid JSON.
  std::istringstream lines(testing::ReadFile(fs::path(dir) / "detections.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
  }

  EXPECT_EQ(testing::ReadFile(fs::path(dir) / "tracks.txt"),
            "1,3,10.00,20.50,100.25,199.50,0.8731,-1,-1,-1\n"
            "7,3,12.00,22.00,100.00,200.00,0.9000,-1,-1,-1\n"
            "7,7,300.00,100.00,50.00,100.00,0.6100,-1,-1,-1\n"
            "10,7,302.00,101.00,50.00,102.00,0.7000,-1,-1,-1\n"
            "10,9,5.50,6.25,14.50,23.75,0.5500,-1,-1,-1\n");

  const std::string summary_text = testing::ReadFile(fs::path(dir) / "summary.json");
  auto s = nlohmann::json::parse(summary_text);
  EXPECT_EQ(s["path"], "videos/cam1.avi");
  EXPECT_EQ(s["key"], "cam1.avi");
  EXPECT_EQ(s["video"]["codec"], "h264");
  EXPECT_EQ(s["video"]["width"], 1280);
  EXPECT_EQ(s["video"]["height"], 720);
  EXPECT_EQ(s["video"]["fps"], 25.0);
  EXPECT_EQ(s["video"]["duration_seconds"], 10.0);
  EXPECT_EQ(s["sampling"], "every:3");
  EXPECT_EQ(s["model"], "peoplenet.onnx");
  EXPECT_EQ(s["frames_decoded"], 10);
  EXPECT_EQ(s["frames_analysed"], 4);
  EXPECT_EQ(s["frames_with_detections"], 3);
  EXPECT_EQ(s["detections"]["total"], 7);
  EXPECT_EQ(s["detections"]["per_class"], (nlohmann::json{{"person", 4}, {"car", 2}, {"class_5", 1}}));
  EXPECT_EQ(s["tracks"]["count"], 3);
  EXPECT_EQ(s["tracks"]["frames_per_track"]["min"], 1);
  EXPECT_EQ(s["tracks"]["frames_per_track"]["median"], 2.0);
  EXPECT_EQ(s["tracks"]["frames_per_track"]["mean"], 1.667);
  EXPECT_EQ(s["tracks"]["frames_per_track"]["max"], 2);
  const auto& per_track = s["tracks"]["per_track"];
  ASSERT_EQ(per_track.size(), 3u);
  EXPECT_EQ(per_track[0], (nlohmann::json{{"id", 3}, {"first_frame", 0}, {"last_frame", 6}, {"first_pts", 0.0},
                                          {"last_pts", 0.24}, {"frames", 2}}));
  EXPECT_EQ(per_track[1]["id"], 7);
  EXPECT_EQ(per_track[1]["first_frame"], 6);
  EXPECT_EQ(per_track[1]["last_frame"], 9);
  EXPECT_EQ(per_track[1]["frames"], 2);
  EXPECT_EQ(per_track[2]["id"], 9);
  EXPECT_EQ(per_track[2]["frames"], 1);
  // Per-class counts in class-id order; nothing that changes from run to run.
  EXPECT_LT(summary_text.find("\"person\""), summary_text.find("\"class_5\""));
  for (const char* word : {"wall", "_at", "time", "date"}) EXPECT_EQ(summary_text.find(word), std::string::npos) << word;
}

TEST(VideoResults, TwoRunsGiveByteIdenticalFiles) {
  const std::string root = testing::TempDir("results-twice");
  for (const char* run : {"a", "b"}) {
    auto writer = VideoResultWriter::Open(root + "/" + run, MakeHeader());
    ASSERT_TRUE(writer.ok());
    WriteAll(*writer);
    ASSERT_TRUE(writer->Commit(MakeCompletion()).ok());
  }
  for (const char* name : {kDetectionsFileName, kTracksFileName, kSummaryFileName}) {
    const std::string a = testing::ReadFile(fs::path(root) / "a" / name);
    EXPECT_FALSE(a.empty()) << name;
    EXPECT_EQ(a, testing::ReadFile(fs::path(root) / "b" / name)) << name;
  }
}

TEST(VideoResults, NoCommitMeansNoFilesAndAnEarlierAttemptIsWithdrawn) {
  const std::string dir = testing::TempDir("results-abandon");
  {
    auto writer = VideoResultWriter::Open(dir, MakeHeader());
    ASSERT_TRUE(writer.ok());
    WriteAll(*writer);
    ASSERT_TRUE(writer->Commit(MakeCompletion()).ok());
  }
  ASSERT_TRUE(fs::exists(fs::path(dir) / kSummaryFileName));
  { std::ofstream(fs::path(dir) / ".summary.json.partial") << "left by a killed commit"; }
  {
    // A new attempt removes the old outputs at once: the folder must not look complete while it runs,
    // nor after it fails.
    auto writer = VideoResultWriter::Open(dir, MakeHeader());
    ASSERT_TRUE(writer.ok());
    EXPECT_FALSE(fs::exists(fs::path(dir) / kSummaryFileName));
    ASSERT_TRUE(writer->Write(MakeFrames()[0]).ok());
  }
  EXPECT_TRUE(FilesIn(dir).empty()) << FilesIn(dir).size();
}

TEST(VideoResults, RejectsOutOfOrderFramesAndNonFiniteValues) {
  const std::string dir = testing::TempDir("results-bad");
  auto writer = VideoResultWriter::Open(dir, MakeHeader());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Write({5, 0.2, {}}).ok());
  Status again = writer->Write({5, 0.2, {}});
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.message().find("frame 5 written after frame 5"), std::string::npos) << again.message();
  EXPECT_FALSE(writer->Write({4, 0.16, {}}).ok());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(writer->Write({6, 0.24, {{0, 0.5f, nan, 0, 1, 1, -1}}}).ok());
  EXPECT_FALSE(writer->Write({7, 0.28, {{-1, 0.5f, 0, 0, 1, 1, -1}}}).ok());
  EXPECT_FALSE(writer->Write({8, std::numeric_limits<double>::infinity(), {}}).ok());
  ASSERT_TRUE(writer->Write({9, 0.36, {}}).ok());
  EXPECT_EQ(writer->frames_written(), 2);
  ASSERT_TRUE(writer->Commit(MakeCompletion()).ok());
  EXPECT_FALSE(writer->Write({10, 0.4, {}}).ok());
  EXPECT_FALSE(writer->Commit(MakeCompletion()).ok());
}

TEST(VideoResults, SummaryWithoutTracks) {
  const std::string dir = testing::TempDir("results-notracks");
  auto writer = VideoResultWriter::Open(dir, MakeHeader());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Write({0, 0.0, {{1, 0.5f, 0, 0, 10, 10, -1}}}).ok());
  VideoCompletion done = MakeCompletion();
  done.decode_warning = "corrupt data: 2 frames dropped";
  ASSERT_TRUE(writer->Commit(done).ok());
  auto s = nlohmann::json::parse(testing::ReadFile(fs::path(dir) / kSummaryFileName));
  EXPECT_EQ(s["tracks"]["count"], 0);
  EXPECT_TRUE(s["tracks"]["frames_per_track"].is_null());
  EXPECT_EQ(s["decode"]["warning"], "corrupt data: 2 frames dropped");
  EXPECT_EQ(testing::ReadFile(fs::path(dir) / kTracksFileName), "");
}

TEST(VideoResults, LineFormatting) {
  // Names are JSON-escaped; -0.00 is printed 0.00; rounding to 2 and 4 decimals.
  FrameResult f{41, 1.0 / 30.0, {{0, 0.99996f, -0.001f, 1.005f, 2.499f, 3.0f, 12}}};
  EXPECT_EQ(FormatDetectionsLine(f, {"say \"hi\"\\"}),
            "{\"frame\":41,\"pts\":0.033333,\"detections\":[{\"class\":\"say \\\"hi\\\"\\\\\",\"class_id\":0,"
            "\"score\":1.0000,\"box\":[0.00,1.00,2.50,3.00],\"track_id\":12}]}\n");
  EXPECT_EQ(FormatSeconds(0), "0.0");
  EXPECT_EQ(FormatSeconds(12), "12.0");
  EXPECT_EQ(FormatSeconds(0.48), "0.48");
  EXPECT_EQ(FormatSeconds(1001.0 / 30000.0), "0.033367");
  EXPECT_EQ(FormatSeconds(-0.0000001), "0.0");
}

}  // namespace
}  // namespace vidscan
