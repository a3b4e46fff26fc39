#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "decode/decoder.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

using testing::FfmpegPlaneHashes;
using testing::HashFrame;
using testing::MakeVariant;
using testing::PlaneHashes;

struct DecodedStream {
  FileDecodeReport report;
  std::vector<FrameInfo> frames;
  std::vector<PlaneHashes> hashes;
};

DecodedStream DecodeOnCpu(const std::string& path, const std::string& sample = "all") {
  DecodedStream out;
  DecoderOptions options;
  options.device = DecoderDevice::kCpu;
  options.sampling = *SamplingPolicy::Parse(sample);
  options.stream_id = 7;
  out.report = DecodeFile(path, options, [&](DecodedFrame&& f) {
    EXPECT_EQ(f.view.memory, MemoryKind::kHost);
    out.frames.push_back(f.view.info);
    out.hashes.push_back(HashFrame(f.view.info, f.view.luma, f.view.chroma, f.view.info.pitch, f.view.info.pitch));
    return Status::Ok();
  });
  return out;
}

// Acceptance: every frame of the real H.264 video equals FFmpeg's own software decode, plane by plane.
TEST(CpuDecoder, RealVideoIsBitIdenticalToFfmpeg) {
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  VS_REQUIRE_TOOL("ffmpeg");
  DecodedStream ours = DecodeOnCpu(path);
  ASSERT_TRUE(ours.report.status.ok()) << ours.report.status.ToString();
  std::vector<PlaneHashes> reference = FfmpegPlaneHashes(path);
  ASSERT_EQ(reference.size(), 341u);
  ASSERT_EQ(ours.hashes.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i) {
    ASSERT_EQ(ours.hashes[i], reference[i]) << "frame " << i;
  }
  // Frame description: stream id, display index, times from the real 25 fps (the AVI has no pts),
  // size, pitch, colour.
  for (size_t i = 0; i < ours.frames.size(); ++i) {
    const FrameInfo& f = ours.frames[i];
    ASSERT_EQ(f.stream_id, 7);
    ASSERT_EQ(f.frame_index, static_cast<int64_t>(i));
    ASSERT_NEAR(f.pts_seconds, i / 25.0, 1e-9);
    ASSERT_EQ(f.width, 1280);
    ASSERT_EQ(f.height, 720);
    ASSERT_GE(f.pitch, 1280);
    ASSERT_EQ(f.format, PixelFormat::kNV12);
    ASSERT_EQ(f.color_space, ColorSpace::kBT709);
    ASSERT_EQ(f.color_range, ColorRange::kLimited);
  }
  EXPECT_TRUE(ours.frames[0].keyframe);
  EXPECT_EQ(ours.report.counters.frames_decoded, 341);
  EXPECT_NEAR(ours.report.decoded_video_seconds, 13.64, 0.05);
}

// The same bitstream in other containers decodes to the same frames; HEVC 8/10-bit equal FFmpeg.
TEST(CpuDecoder, ContainersAndCodecsMatchFfmpeg) {
  for (const std::string kind : {"mp4", "mkv", "ts", "h264", "hevc8.mp4", "hevc10.mkv", "av1.mp4"}) {
    std::string why;
    auto path = MakeVariant(kind, &why);
    if (!path) GTEST_SKIP() << why;
    DecodedStream ours = DecodeOnCpu(*path);
    ASSERT_TRUE(ours.report.status.ok()) << kind << ": " << ours.report.status.ToString();
    std::vector<PlaneHashes> reference = FfmpegPlaneHashes(*path);
    ASSERT_FALSE(reference.empty()) << kind;
    ASSERT_EQ(ours.hashes.size(), reference.size()) << kind;
    for (size_t i = 0; i < reference.size(); ++i) ASSERT_EQ(ours.hashes[i], reference[i]) << kind << " frame " << i;
    EXPECT_EQ(ours.frames[0].format, kind == "hevc10.mkv" ? PixelFormat::kP016 : PixelFormat::kNV12);
    if (kind == "hevc8.mp4") {
      // With presentation timestamps (this file was encoded at a constant 25 fps), times come from the
      // container, in display order. (The remuxed H.264 variants inherit the AVI's missing pts, which
      // FFmpeg's remux fills in out of order, so they are not checked for times.)
      for (size_t i = 0; i < ours.frames.size(); ++i) {
        ASSERT_NEAR(ours.frames[i].pts_seconds - ours.frames[0].pts_seconds, i / 25.0, 1e-3) << "frame " << i;
      }
    }
  }
}

TEST(CpuDecoder, SamplingDeliversOnlyWantedFrames) {
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  DecodedStream every3 = DecodeOnCpu(path, "every:3");
  ASSERT_TRUE(every3.report.status.ok()) << every3.report.status.ToString();
  ASSERT_EQ(every3.frames.size(), 114u);  // 0, 3, ..., 339
  for (size_t i = 0; i < every3.frames.size(); ++i) EXPECT_EQ(every3.frames[i].frame_index, 3 * static_cast<int64_t>(i));
  EXPECT_EQ(every3.report.counters.frames_decoded, 341);  // all decoded (references), a third converted

  DecodedStream fps5 = DecodeOnCpu(path, "fps:5");
  ASSERT_TRUE(fps5.report.status.ok());
  ASSERT_EQ(fps5.frames.size(), 69u);  // 13.64 s at 5 fps
  for (size_t i = 0; i < fps5.frames.size(); ++i) EXPECT_NEAR(fps5.frames[i].pts_seconds, i * 0.2, 1e-9);

  DecodedStream all = DecodeOnCpu(path);
  DecodedStream keys = DecodeOnCpu(path, "keyframes");
  ASSERT_TRUE(keys.report.status.ok()) << keys.report.status.ToString();
  size_t expected_keys = 0;
  for (const auto& f : all.frames) expected_keys += f.keyframe;
  ASSERT_GE(expected_keys, 1u);
  EXPECT_EQ(keys.frames.size(), expected_keys);
  EXPECT_EQ(keys.report.counters.packets, static_cast<int64_t>(expected_keys));  // nothing else was decoded
  for (const auto& k : keys.frames) {
    const FrameInfo& same = all.frames[k.frame_index];
    EXPECT_TRUE(same.keyframe) << "frame " << k.frame_index;
    EXPECT_EQ(keys.hashes[&k - keys.frames.data()], all.hashes[k.frame_index]) << "frame " << k.frame_index;
  }
  EXPECT_NEAR(keys.report.decoded_video_seconds, 13.64, 1.0);
}

TEST(CpuDecoder, UnsupportedCodecAndTruncationAreClearErrors) {
  std::string why;
  auto mpeg4 = MakeVariant("mpeg4.avi", &why);
  if (!mpeg4) GTEST_SKIP() << why;
  DecodedStream unsupported = DecodeOnCpu(*mpeg4);
  EXPECT_EQ(unsupported.report.status.code(), StatusCode::kUnsupported);
  EXPECT_NE(unsupported.report.status.message().find("codec mpeg4 is not supported"), std::string::npos)
      << unsupported.report.status.ToString();
  EXPECT_NE(unsupported.report.status.message().find(*mpeg4), std::string::npos);

  auto mkv = MakeVariant("mkv", &why);
  ASSERT_TRUE(mkv) << why;
  std::string cut = testing::TempDir("truncate") + "/cut.mkv";
  {
    std::ifstream in(*mkv, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(cut, std::ios::binary) << data.substr(0, data.size() / 2);
  }
  DecodedStream truncated = DecodeOnCpu(cut);
  EXPECT_EQ(truncated.report.status.code(), StatusCode::kCorruptData);
  EXPECT_NE(truncated.report.status.message().find("truncated"), std::string::npos) << truncated.report.status.ToString();
  EXPECT_GT(truncated.frames.size(), 50u);  // the frames before the cut still arrive
}

// Acceptance 5 on CPU: the generated corrupt set through `vidscan bench decode`.
TEST(BenchDecodeCli, CorruptSetYieldsOneErrorPerBadFileAndDecodesGoodFilesFully) {
  std::string why;
  auto dir = testing::CorruptSetDir(&why);
  if (!dir) GTEST_SKIP() << why;
  testing::CheckCorruptSetThroughBench(*dir, "cpu");
}

}  // namespace
}  // namespace vidscan
