#include <gtest/gtest.h>

#include <vector>

#include "decode/decoder.h"
#include "decode/nvdec/nvdec_decoder.h"
#include "pipeline/video_job.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

using testing::HashFrame;
using testing::PlaneHashes;

#define VS_REQUIRE_GPU()                                                  \
  do {                                                                    \
    Status vs_gpu_ = NvdecAvailable(0);                                   \
    if (!vs_gpu_.ok()) GTEST_SKIP() << "no GPU: " << vs_gpu_.message();   \
  } while (0)

struct Decoded {
  FileDecodeReport report;
  std::vector<FrameInfo> frames;
  std::vector<PlaneHashes> hashes;
};

Decoded Decode(const std::string& path, DecoderDevice device, const std::string& sample = "all") {
  Decoded out;
  DecoderOptions options;
  options.device = device;
  options.sampling = *SamplingPolicy::Parse(sample);
  std::vector<uint8_t> luma, chroma;
  out.report = DecodeFile(path, options, [&](DecodedFrame&& f) {
    const FrameInfo& fi = f.view.info;
    out.frames.push_back(fi);
    if (f.view.memory == MemoryKind::kDevice) {
      luma.resize(static_cast<size_t>(fi.row_bytes()) * fi.height);
      chroma.resize(static_cast<size_t>(fi.chroma_row_bytes()) * fi.chroma_height());
      VS_RETURN_IF_ERROR(CopyDeviceFrameToHost(f.view, luma.data(), chroma.data()));
      out.hashes.push_back(HashFrame(fi, luma.data(), chroma.data(), fi.row_bytes(), fi.chroma_row_bytes()));
    } else {
      out.hashes.push_back(HashFrame(fi, f.view.luma, f.view.chroma, fi.pitch, fi.pitch));
    }
    return Status::Ok();
  });
  return out;
}

void ExpectSameFrames(const Decoded& gpu, const Decoded& cpu, const std::string& what) {
  ASSERT_TRUE(gpu.report.status.ok()) << what << ": " << gpu.report.status.ToString();
  ASSERT_TRUE(cpu.report.status.ok()) << what << ": " << cpu.report.status.ToString();
  ASSERT_EQ(gpu.frames.size(), cpu.frames.size()) << what;
  ASSERT_GT(gpu.frames.size(), 0u) << what;
  for (size_t i = 0; i < gpu.frames.size(); ++i) {
    const FrameInfo &g = gpu.frames[i], &c = cpu.frames[i];
    ASSERT_EQ(g.frame_index, c.frame_index) << what << " frame " << i;
    ASSERT_NEAR(g.pts_seconds, c.pts_seconds, 1e-6) << what << " frame " << i;
    ASSERT_EQ(g.width, c.width) << what;
    ASSERT_EQ(g.height, c.height) << what;
    ASSERT_EQ(g.format, c.format) << what;
    ASSERT_EQ(g.color_space, c.color_space) << what;
    ASSERT_EQ(g.color_range, c.color_range) << what;
    ASSERT_EQ(gpu.hashes[i], cpu.hashes[i]) << what << ": NVDEC and libavcodec differ at frame " << g.frame_index;
  }
  std::printf("%s: %zu frames bit-identical (NVDEC vs libavcodec)\n", what.c_str(), gpu.frames.size());
}

// Acceptance 3: NVDEC output is bit-identical to the CPU decoder's (H.264 and HEVC 8-bit; 10-bit too).
TEST(Nvdec, BitIdenticalToCpuOnRealH264) {
  VS_REQUIRE_GPU();
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  ExpectSameFrames(Decode(path, DecoderDevice::kGpu), Decode(path, DecoderDevice::kCpu), "h264 avi");
}

TEST(Nvdec, BitIdenticalToCpuOnHevc) {
  VS_REQUIRE_GPU();
  for (const std::string kind : {"hevc8.mp4", "hevc10.mkv"}) {
    std::string why;
    auto path = testing::MakeVariant(kind, &why);
    if (!path) GTEST_SKIP() << why;
    ExpectSameFrames(Decode(*path, DecoderDevice::kGpu), Decode(*path, DecoderDevice::kCpu), kind);
  }
}

// AV1 on NVDEC (H100 has it): compared with FFmpeg's own decode (libdav1d) of the same file, through
// checksums saved beside the fixture where ffmpeg is missing.
TEST(Nvdec, Av1MatchesFfmpeg) {
  VS_REQUIRE_GPU();
  std::string why;
  auto path = testing::MakeVariant("av1.mp4", &why);
  if (!path) GTEST_SKIP() << why;
  Decoded gpu = Decode(*path, DecoderDevice::kGpu);
  if (gpu.report.status.code() == StatusCode::kUnsupported) {
    // The issue asks for AV1 where the GPU has it; cuvidGetDecoderCaps is the authority.
    GTEST_SKIP() << "NVDEC of this GPU reports no AV1 support: " << gpu.report.status.message();
  }
  ASSERT_TRUE(gpu.report.status.ok()) << gpu.report.status.ToString();
  std::vector<PlaneHashes> reference = testing::FfmpegPlaneHashes(*path);
  ASSERT_FALSE(reference.empty()) << "no FFmpeg reference for " << *path;
  ASSERT_EQ(gpu.hashes.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i) ASSERT_EQ(gpu.hashes[i], reference[i]) << "frame " << i;
  std::printf("av1: %zu frames bit-identical (NVDEC vs FFmpeg/libdav1d)\n", reference.size());
}

// The multi-process decode worker gives NVDEC its output memory (a slot of the shared pool). When it
// refuses (the infer worker died, the video was taken away), the file ends: that is the caller stopping,
// not NVDEC failing, so DecodeVideo must not decode the file again on the CPU. (On the H200 a killed infer
// worker sent the decoders' current videos to the CPU decoder, once per video.)
TEST(Nvdec, OutputMemoryTheCallerWithholdsIsNotAnNvdecFailure) {
  VS_REQUIRE_GPU();
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  DecoderOptions options;
  options.device = DecoderDevice::kGpu;
  int asked = 0, delivered = 0;
  options.acquire_output = [&](size_t) -> Expected<uint8_t*> {
    ++asked;
    return MakeError(StatusCode::kUnavailable, "the worker is told to stop");
  };
  const FileDecodeReport report = DecodeVideo(path, options, [&](DecodedFrame&&) {
    ++delivered;
    return Status::Ok();
  });
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(delivered, 0) << "the CPU decoder ran after the caller stopped NVDEC";
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable) << report.status.ToString();
  EXPECT_NE(report.status.message().find("told to stop"), std::string::npos) << report.status.ToString();
}

TEST(Nvdec, SamplingMatchesCpu) {
  VS_REQUIRE_GPU();
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  for (const std::string sample : {"every:3", "fps:5", "keyframes"}) {
    Decoded gpu = Decode(path, DecoderDevice::kGpu, sample);
    Decoded cpu = Decode(path, DecoderDevice::kCpu, sample);
    ExpectSameFrames(gpu, cpu, "h264 avi " + sample);
    if (sample == "keyframes") EXPECT_EQ(gpu.report.counters.packets, cpu.report.counters.packets);
  }
}

// Acceptance 5 on the GPU.
TEST(Nvdec, CorruptSetThroughBenchDecode) {
  VS_REQUIRE_GPU();
  std::string why;
  auto dir = testing::CorruptSetDir(&why);
  if (!dir) GTEST_SKIP() << why;
  testing::CheckCorruptSetThroughBench(*dir, "gpu");
}

TEST(Nvdec, ParallelSessionsDecodeIndependently) {
  VS_REQUIRE_GPU();
  VS_REQUIRE_DATA(path, testing::kRealVideo);
  Decoded reference = Decode(path, DecoderDevice::kGpu);
  std::vector<Decoded> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&] { r = Decode(path, DecoderDevice::kGpu); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) ExpectSameFrames(r, reference, "parallel session");
}

}  // namespace
}  // namespace vidscan
