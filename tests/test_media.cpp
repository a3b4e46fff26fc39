#include <gtest/gtest.h>

#include <fstream>

#include "media/demuxer.h"
#include "media/sampling.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

using testing::MakeVariant;
using testing::TempDir;

TEST(Demuxer, ProbesRealAviAndPrefersRealFrameRate) {
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  auto demuxer = Demuxer::Open(path);
  ASSERT_TRUE(demuxer.ok()) << demuxer.status().ToString();
  const VideoStreamInfo& info = (*demuxer)->info();
  EXPECT_EQ(info.container, "avi");
  EXPECT_EQ(info.codec, VideoCodec::kH264);
  EXPECT_EQ(info.profile, "High");
  EXPECT_EQ(info.width, 1280);
  EXPECT_EQ(info.height, 720);
  EXPECT_EQ(info.bit_depth, 8);
  EXPECT_DOUBLE_EQ(info.fps, 25.0);              // the real rate
  EXPECT_DOUBLE_EQ(info.declared_avg_fps, 50.0); // the AVI header's claim
  EXPECT_EQ(info.frame_count_estimate, 341);
  EXPECT_EQ(info.color_space, ColorSpace::kBT709);
  EXPECT_EQ(info.color_range, ColorRange::kLimited);
  EXPECT_FALSE(info.color_space_guessed);
  EXPECT_EQ(info.audio_streams, 1);

  // Only video packets come out, all of them, Annex-B (start code first).
  EncodedPacket packet;
  int count = 0, keyframes = 0;
  while (true) {
    auto more = (*demuxer)->ReadPacket(&packet);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ++count;
    keyframes += packet.keyframe;
    ASSERT_GE(packet.size, 4u);
    EXPECT_TRUE(packet.data[0] == 0 && packet.data[1] == 0 && (packet.data[2] == 1 || packet.data[3] == 1));
  }
  EXPECT_EQ(count, 341);
  EXPECT_GE(keyframes, 1);
}

TEST(Demuxer, ReadsEveryContainerVariant) {
  for (const std::string kind : {"mp4", "mkv", "ts", "h264", "hevc8.mp4", "hevc10.mkv"}) {
    std::string why;
    auto path = MakeVariant(kind, &why);
    if (!path) GTEST_SKIP() << why;
    auto demuxer = Demuxer::Open(*path);
    ASSERT_TRUE(demuxer.ok()) << kind << ": " << demuxer.status().ToString();
    const auto& info = (*demuxer)->info();
    EXPECT_EQ(info.width, 1280) << kind;
    EXPECT_EQ(info.height, 720) << kind;
    EXPECT_EQ(info.codec, kind.rfind("hevc", 0) == 0 ? VideoCodec::kHEVC : VideoCodec::kH264) << kind;
    EXPECT_EQ(info.bit_depth, kind == "hevc10.mkv" ? 10 : 8) << kind;
    EXPECT_EQ(info.surface_format(), kind == "hevc10.mkv" ? PixelFormat::kP016 : PixelFormat::kNV12);
    EXPECT_NEAR(info.fps, 25.0, 0.05) << kind;  // remuxed timestamps give 25.04 in some containers
  }
}

TEST(Demuxer, ClearErrorsForFilesThatAreNotVideo) {
  std::string dir = TempDir("demux-errors");
  {
    std::ofstream(dir + "/empty.mp4");
    std::ofstream(dir + "/notes.mp4") << "this is a text file, not a video\n";
  }
  struct Case {
    std::string path;
    StatusCode code;
    std::string says;
  } cases[] = {{dir + "/missing.mp4", StatusCode::kNotFound, "no such file"},
               {dir + "/empty.mp4", StatusCode::kCorruptData, "empty (0 bytes)"},
               {dir + "/notes.mp4", StatusCode::kCorruptData, "not a readable media file"},
               {dir, StatusCode::kInvalidArgument, "not a regular file"}};
  for (const auto& c : cases) {
    auto demuxer = Demuxer::Open(c.path);
    ASSERT_FALSE(demuxer.ok()) << c.path;
    EXPECT_EQ(demuxer.status().code(), c.code) << demuxer.status().ToString();
    EXPECT_NE(demuxer.status().message().find(c.path), std::string::npos) << "names the file";
    EXPECT_NE(demuxer.status().message().find(c.says), std::string::npos) << demuxer.status().ToString();
  }
}

TEST(Demuxer, AudioOnlyFileHasNoVideoStream) {
  VS_REQUIRE_TOOL("ffmpeg");
  std::string path = TempDir("audio") + "/tone.m4a";
  ASSERT_EQ(testing::RunCommand("ffmpeg -nostdin -v error -f lavfi -i sine=d=1 -c:a aac '" + path + "'"), 0);
  auto demuxer = Demuxer::Open(path);
  ASSERT_FALSE(demuxer.ok());
  EXPECT_EQ(demuxer.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(demuxer.status().message().find("no video stream"), std::string::npos) << demuxer.status().ToString();
}

TEST(SamplingPolicy, ParsesAndRejects) {
  EXPECT_EQ(SamplingPolicy::Parse("all")->mode, SamplingPolicy::Mode::kAll);
  EXPECT_EQ(SamplingPolicy::Parse("every:3")->every_nth, 3);
  EXPECT_DOUBLE_EQ(SamplingPolicy::Parse("fps:2.5")->target_fps, 2.5);
  EXPECT_TRUE(SamplingPolicy::Parse("keyframes")->keyframes_only());
  for (const char* bad : {"", "every:0", "every:x", "fps:-1", "fps:", "sometimes", "every:3x"}) {
    auto p = SamplingPolicy::Parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) EXPECT_NE(p.status().message().find("every:N"), std::string::npos);
  }
  EXPECT_EQ(SamplingPolicy::Parse("fps:2.5")->ToString(), "fps:2.5");
}

TEST(FrameSampler, EveryNthAndTargetFps) {
  FrameSampler every3(*SamplingPolicy::Parse("every:3"));
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < 10; ++i)
    if (every3.Keep(i, i / 25.0, false)) kept.push_back(i);
  EXPECT_EQ(kept, (std::vector<int64_t>{0, 3, 6, 9}));

  // 25 fps down to 5 fps: every 5th frame, on the interval starts.
  FrameSampler fps5(*SamplingPolicy::Parse("fps:5"));
  kept.clear();
  for (int64_t i = 0; i < 25; ++i)
    if (fps5.Keep(i, i / 25.0, false)) kept.push_back(i);
  EXPECT_EQ(kept, (std::vector<int64_t>{0, 5, 10, 15, 20}));

  // Asking for more than the stream has keeps every frame once.
  FrameSampler fps100(*SamplingPolicy::Parse("fps:100"));
  int n = 0;
  for (int64_t i = 0; i < 25; ++i) n += fps100.Keep(i, i / 25.0, false);
  EXPECT_EQ(n, 25);
}

TEST(FrameClock, UsesPtsWhenPresentAndIndexOtherwise) {
  FrameClock clock(25.0, 1, 90000, 9000);
  EXPECT_DOUBLE_EQ(clock.Seconds(9000 + 90000, 7), 1.0);
  EXPECT_DOUBLE_EQ(clock.Seconds(EncodedPacket::kNoTimestamp, 50), 2.0);
  EXPECT_EQ(clock.IndexAt(2.0), 50);
}

}  // namespace
}  // namespace vidscan
