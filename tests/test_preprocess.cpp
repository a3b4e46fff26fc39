// The CPU reference preprocessor: against FFmpeg's swscale on a real decoded frame, against the textbook
// colour equations on flat frames, area averaging on a pattern, the ROI/crop equivalence, the letterbox
// mapping, the FP16 conversion and parameter validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

#include "decode/decoder.h"
#include "preprocess/float16.h"
#include "preprocess/frame_descriptor.h"
#include "preprocess/kernel_chunk.h"
#include "preprocess/paired_rows.h"
#include "preprocess/staged_rows.h"
#include "preprocess/preprocess.h"
#include "support/paired_replay.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

// An NV12 or P016 frame in host memory.
struct HostFrame {
  FrameInfo info;
  std::vector<uint8_t> bytes;

  static HostFrame Make(int width, int height, PixelFormat format, int extra_pitch = 0) {
    HostFrame f;
    f.info.width = width;
    f.info.height = height;
    f.info.format = format;
    f.info.pitch = std::max(f.info.row_bytes(), f.info.chroma_row_bytes()) + extra_pitch;
    f.info.pitch += f.info.pitch % BytesPerSample(format);  // 16-bit samples stay aligned
    f.bytes.assign(f.info.luma_bytes() + f.info.chroma_bytes(), 0);
    return f;
  }
  FrameView View() {
    return FrameView{info, MemoryKind::kHost, bytes.data(), bytes.data() + info.luma_bytes()};
  }
  uint8_t* luma_row(int y) { return bytes.data() + static_cast<size_t>(y) * info.pitch; }
  uint8_t* chroma_row(int y) { return bytes.data() + info.luma_bytes() + static_cast<size_t>(y) * info.pitch; }
  void Fill(int y, int u, int v) {  // code values of the format's bit depth
    const int bytes_per = BytesPerSample(info.format);
    auto put = [&](uint8_t* p, int value) {
      if (bytes_per == 1) {
        *p = static_cast<uint8_t>(value);
      } else {
        const uint16_t s = static_cast<uint16_t>(value << 6);
        std::memcpy(p, &s, 2);
      }
    };
    for (int r = 0; r < info.height; ++r) {
      for (int x = 0; x < info.width; ++x) put(luma_row(r) + x * bytes_per, y);
    }
    for (int r = 0; r < info.chroma_height(); ++r) {
      for (int x = 0; x < (info.width + 1) / 2; ++x) {
        put(chroma_row(r) + 2 * x * bytes_per, u);
        put(chroma_row(r) + (2 * x + 1) * bytes_per, v);
      }
    }
  }
};

// Runs the CPU preprocessor on one input into a fresh FP32 tensor.
std::vector<float> RunCpu(const PreprocessParams& params, const PreprocessInput& input,
                          LetterboxTransform* transform = nullptr) {
  PreprocessParams p = params;
  p.type = TensorType::kFloat32;
  auto pre = CreatePreprocessor(p, {});
  EXPECT_TRUE(pre.ok()) << pre.status().ToString();
  std::vector<float> out(p.slot_elements(), std::nanf(""));
  auto t = (*pre)->Run(std::span(&input, 1), {out.data(), 1, MemoryKind::kHost});
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (t.ok() && transform != nullptr) *transform = (*t)[0];
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Real frame against swscale.

struct RgbImage {
  int width = 0, height = 0;
  std::vector<float> rgb;  // interleaved
  // Per element: made from a swscale value at 0 or 255, which may have been clamped from outside the
  // gamut; the reference clamps after resizing instead, so those legitimately differ more.
  std::vector<bool> touches_clamped;
  float at(int x, int y, int c) const { return rgb[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

// NV12 -> RGB24 with swscale: BT.709 limited in, full-range RGB out, bilinear chroma upsampling with the
// chroma siting the reference assumes (MPEG-2: co-sited horizontally, centred vertically).
RgbImage SwscaleToRgb(const FrameView& frame) {
  const FrameInfo& f = frame.info;
  SwsContext* sws = sws_alloc_context();
  EXPECT_NE(sws, nullptr);
  av_opt_set_int(sws, "srcw", f.width, 0);
  av_opt_set_int(sws, "srch", f.height, 0);
  av_opt_set_int(sws, "src_format", AV_PIX_FMT_NV12, 0);
  av_opt_set_int(sws, "dstw", f.width, 0);
  av_opt_set_int(sws, "dsth", f.height, 0);
  av_opt_set_int(sws, "dst_format", AV_PIX_FMT_RGB24, 0);
  av_opt_set_int(sws, "sws_flags", SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, 0);
  av_opt_set_int(sws, "src_h_chr_pos", 0, 0);    // 1/256 luma pixel units: on luma column 0
  av_opt_set_int(sws, "src_v_chr_pos", 128, 0);  // half a luma row down
  EXPECT_GE(sws_init_context(sws, nullptr, nullptr), 0);
  const int* coefficients = sws_getCoefficients(SWS_CS_ITU709);
  EXPECT_GE(sws_setColorspaceDetails(sws, coefficients, 0, coefficients, 1, 0, 1 << 16, 1 << 16), 0);
  std::vector<uint8_t> rgb(static_cast<size_t>(f.width) * f.height * 3);
  const uint8_t* src[4] = {frame.luma, frame.chroma, nullptr, nullptr};
  const int src_stride[4] = {f.pitch, f.pitch, 0, 0};
  uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
  const int dst_stride[4] = {f.width * 3, 0, 0, 0};
  EXPECT_EQ(sws_scale(sws, src, src_stride, 0, f.height, dst, dst_stride), f.height);
  sws_freeContext(sws);
  RgbImage image{f.width, f.height, std::vector<float>(rgb.begin(), rgb.end())};
  return image;
}

// Plain bilinear resize: pixel centres aligned (half-pixel convention), edges repeated.
RgbImage Resize(const RgbImage& in, int width, int height) {
  RgbImage out{width, height, std::vector<float>(static_cast<size_t>(width) * height * 3),
               std::vector<bool>(static_cast<size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y) {
    const double sy = std::clamp((y + 0.5) * in.height / height - 0.5, 0.0, in.height - 1.0);
    const int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, in.height - 1);
    const double fy = sy - y0;
    for (int x = 0; x < width; ++x) {
      const double sx = std::clamp((x + 0.5) * in.width / width - 0.5, 0.0, in.width - 1.0);
      const int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, in.width - 1);
      const double fx = sx - x0;
      for (int c = 0; c < 3; ++c) {
        const double top = in.at(x0, y0, c) * (1 - fx) + in.at(x1, y0, c) * fx;
        const double bottom = in.at(x0, y1, c) * (1 - fx) + in.at(x1, y1, c) * fx;
        const size_t i = (static_cast<size_t>(y) * width + x) * 3 + c;
        out.rgb[i] = static_cast<float>(top * (1 - fy) + bottom * fy);
        for (float v : {in.at(x0, y0, c), in.at(x1, y0, c), in.at(x0, y1, c), in.at(x1, y1, c)}) {
          if (v == 0.0f || v == 255.0f) out.touches_clamped[i] = true;
        }
      }
    }
  }
  return out;
}

struct ErrorStats {
  double mean = 0, max = 0;
  double max_in_gamut = 0;  // over elements not made from a possibly clamped value
};

ErrorStats Compare(const std::vector<float>& nhwc, const RgbImage& expected) {
  ErrorStats s;
  for (size_t i = 0; i < nhwc.size(); ++i) {
    const double e = std::fabs(nhwc[i] - expected.rgb[i]);
    s.mean += e;
    s.max = std::max(s.max, e);
    if (expected.touches_clamped.empty() || !expected.touches_clamped[i]) s.max_in_gamut = std::max(s.max_in_gamut, e);
  }
  s.mean /= static_cast<double>(nhwc.size());
  return s;
}

TEST(PreprocessCpu, RealFrameMatchesSwscale) {
  VS_REQUIRE_DATA(video, testing::kRealVideo);
  HostFrame frame;
  DecoderOptions options;
  options.device = DecoderDevice::kCpu;
  FileDecodeReport report = DecodeFile(video, options, [&](DecodedFrame&& decoded) {
    if (frame.bytes.empty() && decoded.view.info.pts_seconds >= 5.0) {
      const FrameInfo& f = decoded.view.info;
      frame.info = f;
      frame.bytes.resize(f.luma_bytes() + f.chroma_bytes());
      std::memcpy(frame.bytes.data(), decoded.view.luma, f.luma_bytes());
      std::memcpy(frame.bytes.data() + f.luma_bytes(), decoded.view.chroma, f.chroma_bytes());
    }
    return Status::Ok();
  });
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  ASSERT_FALSE(frame.bytes.empty()) << "no frame at 5 s";
  ASSERT_EQ(frame.info.format, PixelFormat::kNV12);
  ASSERT_EQ(frame.info.color_space, ColorSpace::kBT709);
  ASSERT_EQ(frame.info.color_range, ColorRange::kLimited);
  const RgbImage full = SwscaleToRgb(frame.View());

  PreprocessParams params;
  params.layout = TensorLayout::kNHWC;
  // Same size: colour conversion and chroma upsampling alone. swscale rounds to 8 bits (0.25 mean).
  params.width = frame.info.width;
  params.height = frame.info.height;
  ErrorStats same = Compare(RunCpu(params, {frame.View(), {}, 0}), full);
  std::printf("same size: mean %.3f, max %.3f levels\n", same.mean, same.max);
  EXPECT_LT(same.mean, 0.35);
  EXPECT_LE(same.max, 1.5);
  // Shrunk 2x and 1.5x, against swscale's RGB resized by the test. The reference resizes YUV and clamps
  // after, the comparison resizes clamped 8-bit RGB: where a resized value comes from a clamped one they
  // legitimately differ (up to ~6 levels on this frame), so the bound on the maximum excludes those.
  for (auto [w, h] : {std::pair{640, 360}, std::pair{853, 480}}) {
    params.width = w;
    params.height = h;
    std::vector<float> mine = RunCpu(params, {frame.View(), {}, 0});
    RgbImage theirs = Resize(full, w, h);
    ErrorStats shrunk = Compare(mine, theirs);
    std::printf("%dx%d: mean %.3f, max %.3f levels (%.3f away from clamped values)\n", w, h, shrunk.mean,
                shrunk.max, shrunk.max_in_gamut);
    EXPECT_LT(shrunk.mean, 0.35);
    EXPECT_LE(shrunk.max_in_gamut, 1.5);
    EXPECT_LE(shrunk.max, 8.0);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Colour equations on flat frames: every matrix, range and bit depth against the textbook formula.

TEST(PreprocessCpu, FlatFramesFollowTheColourEquations) {
  std::mt19937 rng(7);
  struct Matrix {
    ColorSpace space;
    double kr, kb;
  };
  for (Matrix m : {Matrix{ColorSpace::kBT601, 0.299, 0.114}, Matrix{ColorSpace::kBT709, 0.2126, 0.0722},
                   Matrix{ColorSpace::kBT2020, 0.2627, 0.0593}}) {
    for (ColorRange range : {ColorRange::kLimited, ColorRange::kFull}) {
      for (PixelFormat format : {PixelFormat::kNV12, PixelFormat::kP016}) {
        const int bits = format == PixelFormat::kNV12 ? 8 : 10;
        const int max_code = (1 << bits) - 1;
        for (int trial = 0; trial < 20; ++trial) {
          const int y = static_cast<int>(rng() % (max_code + 1));
          const int u = static_cast<int>(rng() % (max_code + 1));
          const int v = static_cast<int>(rng() % (max_code + 1));
          HostFrame f = HostFrame::Make(7, 5, format, 3);
          f.info.color_space = m.space;
          f.info.color_range = range;
          f.Fill(y, u, v);
          const double k = 1 << (bits - 8);
          double yn, un, vn;
          if (range == ColorRange::kLimited) {
            yn = (y - 16 * k) / (219 * k);
            un = (u - 128 * k) / (224 * k);
            vn = (v - 128 * k) / (224 * k);
          } else {
            yn = static_cast<double>(y) / max_code;
            un = (u - 128 * k) / max_code;
            vn = (v - 128 * k) / max_code;
          }
          const double kg = 1 - m.kr - m.kb;
          const double r = yn + 2 * (1 - m.kr) * vn;
          const double b = yn + 2 * (1 - m.kb) * un;
          const double g = (yn - m.kr * r - m.kb * b) / kg;
          const double expected_rgb[3] = {std::clamp(r * 255, 0.0, 255.0), std::clamp(g * 255, 0.0, 255.0),
                                          std::clamp(b * 255, 0.0, 255.0)};
          PreprocessParams params;
          params.width = 3;
          params.height = 4;
          params.order = trial % 2 ? ChannelOrder::kBGR : ChannelOrder::kRGB;
          params.layout = TensorLayout::kNHWC;
          std::vector<float> out = RunCpu(params, {f.View(), {}, 0});
          for (int c = 0; c < 3; ++c) {
            const double want = expected_rgb[params.order == ChannelOrder::kRGB ? c : 2 - c];
            for (int px = 0; px < 12; ++px) {
              ASSERT_NEAR(out[px * 3 + c], want, 2e-3)
                  << ColorSpaceName(m.space) << " " << ColorRangeName(range) << " " << PixelFormatName(format)
                  << " yuv " << y << "," << u << "," << v << " channel " << c;
            }
          }
        }
      }
    }
  }
  // Two fixed points: limited-range black and white.
  HostFrame f = HostFrame::Make(4, 4, PixelFormat::kNV12);
  PreprocessParams params;
  params.width = 2;
  params.height = 2;
  f.Fill(235, 128, 128);
  EXPECT_NEAR(RunCpu(params, {f.View(), {}, 0})[0], 255.0f, 1e-3);
  f.Fill(16, 128, 128);
  EXPECT_NEAR(RunCpu(params, {f.View(), {}, 0})[0], 0.0f, 1e-3);
}

TEST(PreprocessCpu, NormalisationAndPadding) {
  HostFrame f = HostFrame::Make(8, 4, PixelFormat::kNV12);
  f.info.color_range = ColorRange::kFull;
  f.Fill(200, 128, 128);  // grey 200 in every channel
  PreprocessParams params;
  params.width = 8;
  params.height = 8;
  params.resize = ResizeMode::kLetterbox;
  params.placement = LetterboxPlacement::kTopLeft;
  params.scale = {1.0f / 255, 1.0f / 255, 1.0f / 255};
  params.mean = {0.485f, 0.456f, 0.406f};
  params.std = {0.229f, 0.224f, 0.225f};
  params.pad = {114, 114, 114};
  LetterboxTransform t;
  std::vector<float> out = RunCpu(params, {f.View(), {}, 0}, &t);  // NCHW
  EXPECT_EQ(t.content_width, 8);
  EXPECT_EQ(t.content_height, 4);
  EXPECT_EQ(t.content_x, 0);
  EXPECT_EQ(t.content_y, 0);
  for (int c = 0; c < 3; ++c) {
    const float picture = (200.0f / 255 - params.mean[c]) / params.std[c];
    const float pad = (114.0f / 255 - params.mean[c]) / params.std[c];
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        EXPECT_NEAR(out[(c * 8 + y) * 8 + x], y < 4 ? picture : pad, 1e-5) << c << " " << x << " " << y;
      }
    }
  }
}

// Shrinking 8x a pattern of one bright column in four: bilinear alone would see 0 or 127.5, the area
// path the true average 63.75.
TEST(PreprocessCpu, ShrinkingMoreThanTwiceAveragesTheArea) {
  HostFrame f = HostFrame::Make(64, 8, PixelFormat::kNV12);
  f.info.color_range = ColorRange::kFull;
  f.Fill(0, 128, 128);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 64; x += 4) f.luma_row(y)[x] = 255;
  }
  PreprocessParams params;
  params.width = 8;
  params.height = 8;
  params.layout = TensorLayout::kNHWC;
  std::vector<float> out = RunCpu(params, {f.View(), {}, 0});
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], 63.75f, 1e-3) << i;
  // 1.5x: plain bilinear, exactly the interpolation of the two nearest columns.
  params.width = 42;  // 64 / 42: output column 1 is at source x = 1.5 * 64 / 42 - 0.5
  out = RunCpu(params, {f.View(), {}, 0});
  const double sx = 1.5 * 64 / 42 - 0.5;  // between columns 1 (0) and 2 (0)
  EXPECT_NEAR(out[3], 0.0, 1e-4) << sx;
  const double sx0 = 0.5 * 64 / 42 - 0.5;  // between columns 0 (255) and 1 (0)
  EXPECT_NEAR(out[0], 255 * (1 - sx0), 1e-3);
}

// A ROI with an even origin gives what the cropped frame gives.
TEST(PreprocessCpu, RoiEqualsCroppedFrame) {
  std::mt19937 rng(11);
  for (PixelFormat format : {PixelFormat::kNV12, PixelFormat::kP016}) {
    HostFrame f = HostFrame::Make(101, 77, format, 5);
    for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
    const Roi roi{20, 14, 51, 39};
    HostFrame crop = HostFrame::Make(roi.width, roi.height, format);
    const int bps = BytesPerSample(format);
    for (int y = 0; y < roi.height; ++y) {
      std::memcpy(crop.luma_row(y), f.luma_row(roi.y + y) + roi.x * bps, roi.width * bps);
    }
    for (int y = 0; y < crop.info.chroma_height(); ++y) {
      std::memcpy(crop.chroma_row(y), f.chroma_row(roi.y / 2 + y) + roi.x * bps, crop.info.chroma_row_bytes());
    }
    for (auto [w, h] : {std::pair{17, 13}, std::pair{160, 90}, std::pair{51, 39}}) {
      PreprocessParams params;
      params.width = w;
      params.height = h;
      params.resize = ResizeMode::kLetterbox;
      LetterboxTransform t_roi, t_crop;
      std::vector<float> a = RunCpu(params, {f.View(), roi, 0}, &t_roi);
      std::vector<float> b = RunCpu(params, {crop.View(), {}, 0}, &t_crop);
      for (size_t i = 0; i < a.size(); ++i) {
        // Sample positions round differently with and without the ROI offset (by ~1e-5 pixels).
        ASSERT_NEAR(a[i], b[i], 0.05) << PixelFormatName(format) << " " << w << "x" << h << " element " << i;
      }
      EXPECT_NEAR(t_roi.NetworkToSourceX(t_roi.content_x), roi.x, 1e-4);
      EXPECT_NEAR(t_crop.NetworkToSourceX(t_crop.content_x), 0, 1e-4);
    }
  }
}

TEST(PreprocessCpu, Float16OutputIsTheRoundedFloat32Output) {
  std::mt19937 rng(3);
  HostFrame f = HostFrame::Make(33, 21, PixelFormat::kNV12, 1);
  for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
  PreprocessParams params;
  params.width = 19;
  params.height = 23;
  params.mean = {100, 110, 120};
  params.std = {57, 58, 59};
  for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
    params.layout = layout;
    const std::vector<float> reference = RunCpu(params, {f.View(), {}, 0});
    params.type = TensorType::kFloat16;
    auto pre = CreatePreprocessor(params, {});
    ASSERT_TRUE(pre.ok());
    std::vector<uint16_t> half(params.slot_elements());
    PreprocessInput in{f.View(), {}, 0};
    ASSERT_TRUE((*pre)->Run(std::span(&in, 1), {half.data(), 1, MemoryKind::kHost}).ok());
    for (size_t i = 0; i < half.size(); ++i) ASSERT_EQ(half[i], FloatToHalfBits(reference[i])) << i;
    params.type = TensorType::kFloat32;
  }
  // NCHW and NHWC hold the same values.
  params.layout = TensorLayout::kNCHW;
  const std::vector<float> nchw = RunCpu(params, {f.View(), {}, 0});
  params.layout = TensorLayout::kNHWC;
  const std::vector<float> nhwc = RunCpu(params, {f.View(), {}, 0});
  const size_t plane = static_cast<size_t>(params.width) * params.height;
  for (size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(nchw[c * plane + p], nhwc[p * 3 + c]);
  }
}

TEST(Float16, ConversionRoundsToNearestEven) {
  EXPECT_EQ(FloatToHalfBits(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalfBits(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalfBits(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(FloatToHalfBits(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(FloatToHalfBits(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even 2
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);   // tie to even
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(3.0f, -11)), 0x3c02);   // tie to even (up)
  EXPECT_TRUE(std::isnan(HalfBitsToFloat(FloatToHalfBits(std::nanf("")))));
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half survives the round trip
    ASSERT_EQ(FloatToHalfBits(HalfBitsToFloat(static_cast<uint16_t>(h))), h);
  }
  EXPECT_EQ(HalfBitsToFloat(0x3555), 0.333251953125f);
}

// ---------------------------------------------------------------------------------------------------------
// The CUDA kernel's work split (kernel_chunk.h), replayed lane by lane on the CPU: chunks, the shared tile,
// 16-byte stores and row tails must reproduce the reference bit for bit (same arithmetic on the host).
// This checks the kernel's indexing where no GPU is present; the GPU tests check the kernel itself.

template <typename Out, bool kNhwc>
void ReplayKernel(const PreprocessParams& p, const std::vector<preprocess_detail::FrameDescriptor>& frames) {
  using namespace preprocess_detail;
  const int chunks_per_row = (p.width + kChunkPixels - 1) / kChunkPixels;
  for (const FrameDescriptor& d : frames) {
    for (int chunk = 0; chunk < chunks_per_row * p.height; ++chunk) {
      const ChunkGeometry g = LocateChunk(chunk, chunks_per_row, p.width);
      alignas(16) Out tile[kTileElements];
      std::memset(tile, 0xff, sizeof tile);
      for (int lane = 0; lane < 32; ++lane) ConvertChunkAnyFormat<Out, kNhwc>(d, g, lane, tile);
      for (int lane = 0; lane < 32; ++lane) StoreChunk<Out, kNhwc>(d, g, lane, tile, p.width, p.height);
    }
  }
}

// The CPU reference of `frames` (input i, with rois[i], into slot n - 1 - i) for one output shape, and
// descriptors whose slots point into `replay` (poisoned with 0xff) for a kernel replay to fill.
struct ReplayCase {
  PreprocessParams params;
  std::vector<uint8_t> reference, replay;
  std::vector<preprocess_detail::FrameDescriptor> descriptors;
};
void MakeReplayCase(std::vector<HostFrame>& frames, const Roi* rois, int w, int h, TensorLayout layout,
                    TensorType type, ResizeMode mode, ReplayCase& c, ChannelOrder order = ChannelOrder::kBGR,
                    LetterboxPlacement placement = LetterboxPlacement::kCentre) {
  PreprocessParams& p = c.params;
  p.width = w;
  p.height = h;
  p.layout = layout;
  p.type = type;
  p.resize = mode;
  p.placement = placement;
  p.order = order;
  p.mean = {10, 20, 30};
  p.std = {50, 60, 70};
  const int slots = static_cast<int>(frames.size());
  std::vector<PreprocessInput> inputs;
  for (int i = 0; i < slots; ++i) inputs.push_back({frames[i].View(), rois[i], slots - 1 - i});
  auto cpu = CreatePreprocessor(p, {});
  ASSERT_TRUE(cpu.ok());
  c.reference.assign(p.slot_bytes() * slots, 0);
  c.replay.assign(p.slot_bytes() * slots, 0xff);
  auto transforms = (*cpu)->Run(inputs, {c.reference.data(), slots, MemoryKind::kHost});
  ASSERT_TRUE(transforms.ok()) << transforms.status().ToString();
  for (int i = 0; i < slots; ++i) {
    c.descriptors.push_back(preprocess_detail::MakeFrameDescriptor(
        p, inputs[i], (*transforms)[i], c.replay.data() + p.slot_bytes() * inputs[i].slot));
  }
}

TEST(PreprocessKernelSplit, ReplayedOnTheCpuEqualsTheReference) {
  std::mt19937 rng(5);
  std::vector<HostFrame> frames;
  frames.push_back(HostFrame::Make(640, 360, PixelFormat::kNV12, 64));
  frames.push_back(HostFrame::Make(333, 201, PixelFormat::kP016, 6));
  frames.push_back(HostFrame::Make(1500, 90, PixelFormat::kNV12, 1));  // shrinks > 2x horizontally
  frames.push_back(HostFrame::Make(5, 3, PixelFormat::kNV12));
  for (auto& f : frames) {
    for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
    if (f.info.format == PixelFormat::kP016) {
      for (size_t i = 0; i + 1 < f.bytes.size(); i += 2) f.bytes[i] &= 0xc0;  // value << 6 (little endian)
    }
  }
  const Roi rois[] = {{}, {10, 7, 300, 150}, {}, {1, 1, 3, 2}};
  // 600 = 2 full chunks + a tail of 88; 300 = one chunk + 44; 37 = one partial chunk, rows not 16-byte
  // aligned for any type and layout.
  for (auto [w, h] : {std::pair{600, 40}, std::pair{300, 61}, std::pair{37, 19}}) {
    for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
      for (TensorType type : {TensorType::kFloat16, TensorType::kFloat32}) {
        for (ResizeMode mode : {ResizeMode::kStretch, ResizeMode::kLetterbox}) {
          ReplayCase c;
          MakeReplayCase(frames, rois, w, h, layout, type, mode, c);
          if (HasFatalFailure()) return;
          const PreprocessParams& p = c.params;
          const auto& descriptors = c.descriptors;
          if (w == 600 && h == 40) {
            EXPECT_EQ(descriptors[0].vector_store, 1) << "the 16-byte store path must be exercised";
          }
          if (w == 37) EXPECT_EQ(descriptors[0].vector_store, 0);
          const bool nhwc = layout == TensorLayout::kNHWC;
          if (type == TensorType::kFloat32) {
            nhwc ? ReplayKernel<float, true>(p, descriptors) : ReplayKernel<float, false>(p, descriptors);
          } else {
            nhwc ? ReplayKernel<uint16_t, true>(p, descriptors) : ReplayKernel<uint16_t, false>(p, descriptors);
          }
          ASSERT_EQ(c.replay, c.reference) << w << "x" << h << " layout " << static_cast<int>(layout) << " type "
                                           << static_cast<int>(type) << " mode " << static_cast<int>(mode);
        }
      }
    }
  }
}

// The staged kernel (v2 and its tunings, one Shape each) replayed on the CPU: per warp (a
// Shape::kColumns range of Shape::kRowsPerWarp rows) the source window, per row the four staged rows copied exactly as the kernel's 16-byte copies would (bytes
// [begin, end) of each row; the rest of the stage poisoned, so a tap outside the window shows), then
// every lane's pixels. Frames v2 does not take go through the v1 replay, as the launcher sends them.
template <typename Shape, typename Sample, typename Out, bool kNhwc>
void ReplayStagedFrame(const PreprocessParams& p, const preprocess_detail::FrameDescriptor& d) {
  using namespace preprocess_detail;
  constexpr int kCapacity = Shape::kStageRowCapacityPerSampleByte * sizeof(Sample);
  const int chunks_per_row = (p.width + Shape::kColumns - 1) / Shape::kColumns;
  const int row_groups = (p.height + Shape::kRowsPerWarp - 1) / Shape::kRowsPerWarp;
  std::vector<uint8_t> stage(4 * kCapacity);
  for (int warp_index = 0; warp_index < chunks_per_row * row_groups; ++warp_index) {
    const int x_begin = (warp_index % chunks_per_row) * Shape::kColumns;
    const int oy_begin = (warp_index / chunks_per_row) * Shape::kRowsPerWarp;
    const int count = std::min(Shape::kColumns, p.width - x_begin);
    const StagedWindow w = MakeStagedWindow<Sample>(d, x_begin, count);
    ASSERT_TRUE(w.Fits(kCapacity)) << "window " << w.luma_end - w.luma_begin << " / " << w.chroma_end - w.chroma_begin;
    std::vector<StagedColumnTaps> columns(Shape::kColumns);
    std::memset(columns.data(), 0xee, columns.size() * sizeof(StagedColumnTaps));  // a missed entry shows
    for (int lane = 0; lane < 32; ++lane) MakeStagedColumnTaps<Sample, Shape::kPixelsPerLane, 1>(d, w, x_begin, count, lane,
                                                                                     columns.data());
    for (int oy = oy_begin; oy < std::min(oy_begin + Shape::kRowsPerWarp, p.height); ++oy) {
      const StagedRowTaps t = MakeStagedRowTaps(d, w, oy);
      std::fill(stage.begin(), stage.end(), uint8_t{0xa5});
      if (t.inside) {
        auto copy = [&](int index, const uint8_t* plane, int row, int begin, int end) {
          std::memcpy(stage.data() + index * kCapacity, plane + static_cast<size_t>(row) * d.pitch + begin, end - begin);
        };
        copy(0, d.luma, t.luma.i0, w.luma_begin, w.luma_end);
        copy(1, d.luma, t.luma.i1, w.luma_begin, w.luma_end);
        copy(2, d.chroma, t.chroma.i0, w.chroma_begin, w.chroma_end);
        copy(3, d.chroma, t.chroma.i1, w.chroma_begin, w.chroma_end);
      }
      const StagedRowsView view{stage.data(), stage.data() + kCapacity, stage.data() + 2 * kCapacity,
                                stage.data() + 3 * kCapacity};
      for (int lane = 0; lane < 32; ++lane) {
        StagedRowPixels<Sample, Out, kNhwc, Shape::kPixelsPerLane, 1>(d, w, t, view, columns.data(), x_begin, count,
                                                                      oy, p.width, p.height, lane);
      }
    }
  }
}

template <typename Shape, typename Out, bool kNhwc>
int ReplayStagedLaunch(const PreprocessParams& p, const std::vector<preprocess_detail::FrameDescriptor>& frames) {
  using namespace preprocess_detail;
  int taken = 0;
  std::vector<FrameDescriptor> rest;
  for (const FrameDescriptor& d : frames) {
    if (!StagedKernelTakes(d)) {
      rest.push_back(d);
      continue;
    }
    ++taken;
    d.is_p016 ? ReplayStagedFrame<Shape, uint16_t, Out, kNhwc>(p, d) : ReplayStagedFrame<Shape, uint8_t, Out, kNhwc>(p, d);
  }
  ReplayKernel<Out, kNhwc>(p, rest);
  return taken;
}

// Every staged variant's shape (v2, v2-r2, ...): the replay is per Shape, like the kernel.
class PreprocessStagedSplit : public ::testing::TestWithParam<CudaPreprocessVariant> {};

INSTANTIATE_TEST_SUITE_P(StagedVariants, PreprocessStagedSplit,
                         ::testing::ValuesIn([] {
                           std::vector<CudaPreprocessVariant> staged;
                           for (CudaPreprocessVariant v : AllCudaPreprocessVariants()) {
                             if (preprocess_detail::IsStagedVariant(v)) staged.push_back(v);
                           }
                           return staged;
                         }()),
                         [](const ::testing::TestParamInfo<CudaPreprocessVariant>& info) {
                           std::string name = CudaPreprocessVariantName(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(PreprocessStagedVariants, EveryVariantButV1AndV3sIsStagedAndNamedUniquely) {
  std::set<std::string> names;
  for (CudaPreprocessVariant v : AllCudaPreprocessVariants()) {
    EXPECT_TRUE(names.insert(CudaPreprocessVariantName(v)).second) << CudaPreprocessVariantName(v);
    const bool paired = preprocess_detail::IsPairedVariant(v);
    EXPECT_EQ(paired, std::string(CudaPreprocessVariantName(v)).starts_with("v3")) << CudaPreprocessVariantName(v);
    EXPECT_EQ(preprocess_detail::IsStagedVariant(v), v != CudaPreprocessVariant::kChunkTile && !paired)
        << CudaPreprocessVariantName(v);
    EXPECT_EQ(CudaPreprocessVariantToleranceLevels(v), paired ? 0.02f : 0.01f);
  }
  EXPECT_EQ(names.size(), 17u);
  EXPECT_TRUE(names.count("v3") && names.count("v3-c320"));
  EXPECT_TRUE(preprocess_detail::IsPairedVariant(kDefaultCudaPreprocessVariant)) << "the fastest measured (v3-c320-g4)";
}

// Without antialiasing (YOLOX) a shrink beyond 2x still has one tap per axis; v2's staging window only
// holds step <= 2, so such frames go to v1 (they used to reach v2, whose kernel then trapped).
TEST(PreprocessStagedVariants, StagedKernelLeavesSingleTapShrinkBeyondTwoToV1) {
  HostFrame frame = HostFrame::Make(1280, 720, PixelFormat::kNV12, 0);  // pitch 1280: 16-byte aligned rows
  PreprocessParams p;
  p.width = 416;
  p.height = 416;
  p.resize = ResizeMode::kLetterbox;
  p.antialias = false;
  const PreprocessInput input{frame.View(), {}, 0};
  auto t = ComputeLetterboxTransform(p, frame.info, {});
  ASSERT_TRUE(t.ok());
  std::vector<float> out(p.slot_elements());
  const auto d = preprocess_detail::MakeFrameDescriptor(p, input, *t, out.data());
  ASSERT_EQ(d.taps_x, 1);
  ASSERT_EQ(d.rows_16b_aligned, 1);
  EXPECT_FALSE(preprocess_detail::StagedKernelTakes(d));
  EXPECT_FALSE(preprocess_detail::PairedKernelTakes(d, p));
  p.antialias = true;  // the area path: v1 as well
  EXPECT_FALSE(preprocess_detail::StagedKernelTakes(preprocess_detail::MakeFrameDescriptor(p, input, *t, out.data())));
}

TEST_P(PreprocessStagedSplit, ReplayedOnTheCpuEqualsTheReference) {
  std::mt19937 rng(7);
  std::vector<HostFrame> frames;
  frames.push_back(HostFrame::Make(640, 360, PixelFormat::kNV12, 64));  // pitch 704
  frames.push_back(HostFrame::Make(333, 201, PixelFormat::kP016, 4));   // pitch 672, ROI below
  frames.push_back(HostFrame::Make(96, 80, PixelFormat::kNV12, 16));    // enlarged, pitch 112
  frames.push_back(HostFrame::Make(1500, 90, PixelFormat::kNV12, 4));   // shrinks > 2x: v1
  for (auto& f : frames) {
    for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
    if (f.info.format == PixelFormat::kP016) {
      for (size_t i = 0; i + 1 < f.bytes.size(); i += 2) f.bytes[i] &= 0xc0;  // value << 6 (little endian)
    }
  }
  const Roi rois[] = {{}, {10, 7, 300, 150}, {}, {}};
  // 256 columns: 600 = 2 ranges + 88, 517 = 2 + 5 (odd), 330 = 1 + 74; 192 columns: 600 = 3 + 24, 517 =
  // 2 + 133, 330 = 1 + 138. Heights 340, 190 and 181 leave partial row groups for 8, 4 and 2 rows per warp.
  for (auto [w, h] : {std::pair{600, 340}, std::pair{517, 190}, std::pair{330, 181}}) {
    for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
      for (TensorType type : {TensorType::kFloat16, TensorType::kFloat32}) {
        for (ResizeMode mode : {ResizeMode::kStretch, ResizeMode::kLetterbox}) {
          ReplayCase c;
          MakeReplayCase(frames, rois, w, h, layout, type, mode, c);
          if (HasFatalFailure()) return;
          const int taken = preprocess_detail::VisitStagedShape(GetParam(), -1, [&](auto shape) {
            using Shape = decltype(shape);
            if (type == TensorType::kFloat32) {
              return layout == TensorLayout::kNHWC ? ReplayStagedLaunch<Shape, float, true>(c.params, c.descriptors)
                                                   : ReplayStagedLaunch<Shape, float, false>(c.params, c.descriptors);
            }
            return layout == TensorLayout::kNHWC ? ReplayStagedLaunch<Shape, uint16_t, true>(c.params, c.descriptors)
                                                 : ReplayStagedLaunch<Shape, uint16_t, false>(c.params, c.descriptors);
          });
          EXPECT_EQ(taken, 3) << "the staged kernel must take the three aligned frames of step <= 2";
          ASSERT_EQ(c.replay, c.reference) << w << "x" << h << " layout " << static_cast<int>(layout) << " type "
                                       << static_cast<int>(type) << " mode " << static_cast<int>(mode);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Kernel v3 (paired_rows.h): its device instructions' host twins, which frames it takes, its work split,
// and the whole kernel replayed on the CPU (support/paired_replay.h) against the reference within v3's
// tolerance.

TEST(PreprocessPaired, HostTwinsOfPrmtAndDp2a) {
  using namespace preprocess_detail;
  EXPECT_EQ(BytePermute(0x03020100u, 0x07060504u, 0x3210u), 0x03020100u);
  EXPECT_EQ(BytePermute(0x03020100u, 0x07060504u, 0x7654u), 0x07060504u);
  EXPECT_EQ(BytePermute(0x33221100u, 0x77665544u, 0x0752u), 0x00775522u);
  EXPECT_EQ(BytePermute(0x00008000u, 0u, 0x0009u), 0x000000ffu) << "bit 3 of a nibble replicates the sign";
  EXPECT_EQ(BytePermute(0x12345678u, 0u, 0xffff0000u + 0x1032u), 0x56781234u) << "selector bits 16..31 are ignored";
  // w0 * b0 + w1 * b1 + acc (LO) and the same with bytes 2, 3 (HI).
  EXPECT_EQ(DotPairLow(3u | 5u << 16, 0x04030201u, 100u), 100u + 3 * 1 + 5 * 2);
  EXPECT_EQ(DotPairHigh(3u | 5u << 16, 0x04030201u, 100u), 100u + 3 * 3 + 5 * 4);
  // The largest sum a pair can make stays below 2^23: the bias trick is exact.
  const uint32_t full = DotPairLow(PackPairWeights(0.5f), 0xffffu, kPairFloatBias);
  EXPECT_EQ(BitsToFloat(full), 8388608.0f + 255.0f * 32768.0f);
  EXPECT_EQ(PackPairWeights(0.0f), kPairWeightOne);
  EXPECT_EQ(PackPairWeights(1.0f), kPairWeightOne << 16);
  EXPECT_EQ(PackPairWeights(0.25f), (kPairWeightOne - 8192u) | 8192u << 16);
}

// Frames v3 takes, and why the others go to v2-w4 (and v1).
TEST(PreprocessPaired, TakesTheFramesItSpecialises) {
  using preprocess_detail::PairedKernelTakes;
  HostFrame nv12 = HostFrame::Make(1920, 1080, PixelFormat::kNV12, 0);
  HostFrame p016 = HostFrame::Make(1920, 1080, PixelFormat::kP016, 0);
  HostFrame odd_pitch = HostFrame::Make(1920, 1080, PixelFormat::kNV12, 8);
  std::vector<uint16_t> out(960 * 544 * 3 * 2 + 8);
  auto descriptor = [&](const PreprocessParams& p, HostFrame& f, Roi roi = {}, size_t out_offset = 0) {
    const PreprocessInput input{f.View(), roi, 0};
    auto t = ComputeLetterboxTransform(p, f.info, roi);
    EXPECT_TRUE(t.ok());
    return preprocess_detail::MakeFrameDescriptor(p, input, *t, reinterpret_cast<uint8_t*>(out.data()) + out_offset);
  };
  PreprocessParams p;
  p.width = 960;
  p.height = 544;
  EXPECT_TRUE(PairedKernelTakes(descriptor(p, nv12), p)) << "the benchmark's frame";
  p.order = ChannelOrder::kBGR;
  p.layout = TensorLayout::kNHWC;
  p.type = TensorType::kFloat32;
  EXPECT_TRUE(PairedKernelTakes(descriptor(p, nv12), p));
  p.resize = ResizeMode::kLetterbox;
  EXPECT_TRUE(PairedKernelTakes(descriptor(p, nv12, {101, 33, 1001, 777}), p)) << "ROI, letterbox";
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, p016), p)) << "P016: v2";
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, odd_pitch), p)) << "rows not 16-byte aligned: v1";
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, nv12, {}, 4), p)) << "slot not 8-byte aligned for FP32 pairs";
  p.type = TensorType::kFloat16;
  EXPECT_TRUE(PairedKernelTakes(descriptor(p, nv12, {}, 4), p)) << "FP16 pairs need 4 bytes";
  p.width = 961;
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, nv12), p)) << "odd network width";
  p.width = 320;
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, nv12), p)) << "shrink > 2x: the area path";
  p.antialias = false;
  EXPECT_FALSE(PairedKernelTakes(descriptor(p, nv12), p)) << "one tap but step > 2";
}

// A pair's taps fit its two words when sx(ox + 1) - sx(ox) <= 2 as computed: always at step exactly 2 with
// a half-integer base, and below 2 unless the positions are so large that rounding could push a
// difference past 2.
TEST(PreprocessPaired, PairTapsFitOnlyWhereRoundingCannotBreakThem) {
  using preprocess_detail::FrameDescriptor;
  using preprocess_detail::PairTapsFit;
  FrameDescriptor d;
  d.step_x = 2.0f;
  d.base_x = 0.5f;
  d.content_x1 = 960;
  EXPECT_TRUE(PairTapsFit(d));
  d.base_x = 0.3f;
  EXPECT_FALSE(PairTapsFit(d)) << "step 2 with an inexact base: positions round";
  d.step_x = 1.985f;
  EXPECT_TRUE(PairTapsFit(d));
  d.step_x = 2.0f - 1e-4f;
  d.content_x1 = 8000;
  EXPECT_FALSE(PairTapsFit(d)) << "16000-pixel positions: an ulp is 1e-3";
  d.step_x = 2.001f;
  d.content_x1 = 10;
  EXPECT_FALSE(PairTapsFit(d));
}

// Every unit (row of a strip) belongs to exactly one block, blocks get the same number of rows to within
// one, and each block's segments stay inside one strip.
TEST(PreprocessPaired, WorkSplitCoversEveryRowOnceAndBalancesBlocks) {
  for (auto [frames, ranges, height, blocks] : {std::tuple{32, 4, 544, 396}, std::tuple{3, 2, 7, 50},
                                                std::tuple{1, 1, 1, 4}, std::tuple{5, 3, 181, 7}}) {
    const long long units = static_cast<long long>(frames) * ranges * height;
    std::vector<int> seen(units, 0);
    long long fewest = units, most = 0;
    for (int b = 0; b < blocks; ++b) {
      long long rows = 0;
      preprocess_detail::ForEachPairedSegment(units, b, blocks, ranges, height, [&](const preprocess_detail::PairedSegment& s) {
        ASSERT_GT(s.rows, 0);
        ASSERT_LE(s.oy_begin + s.rows, height);
        ASSERT_LT(s.frame, frames);
        ASSERT_LT(s.range, ranges);
        int covered = 0;
        for (int w = 0; w < 8; ++w) {
          int first, count;
          preprocess_detail::PairedWarpRows(s.rows, w, 8, &first, &count);
          EXPECT_EQ(first, covered);
          EXPECT_LE(count, s.rows / 8 + 1);
          covered += count;
        }
        EXPECT_EQ(covered, s.rows);
        for (int r = 0; r < s.rows; ++r) ++seen[(static_cast<long long>(s.frame) * ranges + s.range) * height + s.oy_begin + r];
        rows += s.rows;
      });
      fewest = std::min(fewest, rows);
      most = std::max(most, rows);
    }
    EXPECT_LE(most - fewest, 1);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), units);
  }
}

// A v3 variant's launch as the CUDA preprocessor makes it, replayed: v3's frames through the v3 replay of
// the variant's shape, the others through v2-w4's (which leaves its own to v1). Returns how many frames v3
// took.
int ReplayPairedVariant(CudaPreprocessVariant variant, ReplayCase& c, int blocks) {
  using namespace preprocess_detail;
  std::vector<FrameDescriptor> paired, rest;
  for (const FrameDescriptor& d : c.descriptors) (PairedKernelTakes(d, c.params) ? paired : rest).push_back(d);
  EXPECT_TRUE(VisitPairedShape(variant, false, [&](auto shape) {
    test::ReplayPairedLaunch<decltype(shape)>(c.params, paired, blocks);
    return true;
  })) << CudaPreprocessVariantName(variant) << " is not a v3 variant";
  const PreprocessParams& p = c.params;
  const bool nhwc = p.layout == TensorLayout::kNHWC;
  if (p.type == TensorType::kFloat32) {
    nhwc ? ReplayStagedLaunch<StagedShapeW4, float, true>(p, rest) : ReplayStagedLaunch<StagedShapeW4, float, false>(p, rest);
  } else {
    nhwc ? ReplayStagedLaunch<StagedShapeW4, uint16_t, true>(p, rest)
         : ReplayStagedLaunch<StagedShapeW4, uint16_t, false>(p, rest);
  }
  return static_cast<int>(paired.size());
}

// Largest |replay - reference| in levels (|scale / std| units) over the tensor, beyond FP16's own rounding;
// any element left unwritten (NaN poison) counts as infinite.
double PairedReplayError(const ReplayCase& c) {
  const PreprocessParams& p = c.params;
  const size_t plane = static_cast<size_t>(p.width) * p.height;
  const size_t elements = c.reference.size() / TensorTypeBytes(p.type);
  double worst = 0;
  for (size_t i = 0; i < elements; ++i) {
    const size_t e = i % p.slot_elements();
    const int channel = p.layout == TensorLayout::kNCHW ? static_cast<int>(e / plane) : static_cast<int>(e % 3);
    const float want = TensorElementAsFloat(c.reference.data(), p.type, i);
    const float got = TensorElementAsFloat(c.replay.data(), p.type, i);
    if (!std::isfinite(got)) return INFINITY;
    double error = std::fabs(static_cast<double>(got) - want);
    if (p.type == TensorType::kFloat16) error = std::max(0.0, error - std::fabs(want) / 1024.0 - 6e-8);
    worst = std::max(worst, error / std::fabs(p.scale[channel] / p.std[channel]));
  }
  return worst;
}

// Every v3 variant's shape: the replay is per shape, like the kernel.
class PreprocessPairedSplit : public ::testing::TestWithParam<CudaPreprocessVariant> {};

INSTANTIATE_TEST_SUITE_P(PairedVariants, PreprocessPairedSplit,
                         ::testing::ValuesIn([] {
                           std::vector<CudaPreprocessVariant> paired;
                           for (CudaPreprocessVariant v : AllCudaPreprocessVariants()) {
                             if (preprocess_detail::IsPairedVariant(v)) paired.push_back(v);
                           }
                           return paired;
                         }()),
                         [](const ::testing::TestParamInfo<CudaPreprocessVariant>& info) {
                           std::string name = CudaPreprocessVariantName(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST_P(PreprocessPairedSplit, ReplayedOnTheCpuMatchesTheReferenceWithinTolerance) {
  std::mt19937 rng(11);
  std::vector<HostFrame> frames;
  frames.push_back(HostFrame::Make(640, 360, PixelFormat::kNV12, 64));   // pitch 704
  frames.push_back(HostFrame::Make(333, 201, PixelFormat::kNV12, 18));   // pitch 352 + ROI below
  frames.push_back(HostFrame::Make(96, 80, PixelFormat::kNV12, 16));     // enlarged, pitch 112
  frames.push_back(HostFrame::Make(1500, 90, PixelFormat::kNV12, 4));    // shrinks > 2x: v1
  frames.push_back(HostFrame::Make(333, 201, PixelFormat::kP016, 4));    // P016: v2-w4
  frames.push_back(HostFrame::Make(1201, 700, PixelFormat::kNV12, 14));  // odd width, pitch 1216
  for (auto& f : frames) {
    for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
    if (f.info.format == PixelFormat::kP016) {
      for (size_t i = 0; i + 1 < f.bytes.size(); i += 2) f.bytes[i] &= 0xc0;  // value << 6 (little endian)
    }
  }
  const Roi rois[] = {{}, {11, 7, 300, 150}, {}, {}, {10, 7, 300, 150}, {3, 1, 1197, 601}};
  double worst = 0;
  int odd_width_taken = 0;
  // 600 = 2 ranges + 88, 518 = 2 + 6, 330 = 1 + 74 columns; letterbox content edges fall inside ranges.
  for (auto [w, h] : {std::pair{600, 340}, std::pair{518, 190}, std::pair{330, 181}}) {
    for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
      for (TensorType type : {TensorType::kFloat16, TensorType::kFloat32}) {
        for (int mode = 0; mode < 3; ++mode) {
          for (ChannelOrder order : {ChannelOrder::kRGB, ChannelOrder::kBGR}) {
            ReplayCase c;
            MakeReplayCase(frames, rois, w, h, layout, type, mode == 0 ? ResizeMode::kStretch : ResizeMode::kLetterbox,
                           c, order, mode == 2 ? LetterboxPlacement::kTopLeft : LetterboxPlacement::kCentre);
            if (HasFatalFailure()) return;
            const int taken = ReplayPairedVariant(GetParam(), c, (w + h + mode) % 13 + 1);  // 1..13 blocks
            if (HasFatalFailure()) return;
            // The three small aligned NV12 frames always; the odd-width one where its step is <= 2.
            const auto& odd = c.descriptors[5];
            EXPECT_EQ(taken, odd.step_x <= 2.0f && odd.taps_x == 1 && odd.taps_y == 1 ? 4 : 3);
            odd_width_taken += taken == 4;
            const double error = PairedReplayError(c);
            worst = std::max(worst, error);
            ASSERT_LE(error, CudaPreprocessVariantToleranceLevels(GetParam()))
                << w << "x" << h << " layout " << static_cast<int>(layout) << " type " << static_cast<int>(type)
                << " mode " << mode << " order " << static_cast<int>(order);
          }
        }
      }
    }
  }
  EXPECT_GT(odd_width_taken, 0);
  std::printf("%s replay: worst error %.4f levels (tolerance %.2f)\n", CudaPreprocessVariantName(GetParam()), worst,
              CudaPreprocessVariantToleranceLevels(GetParam()));
}

// The benchmark's shape (1080p NV12 -> 960x544 FP16 NCHW, step 2 across, 1.985 down) and a 10-bit frame
// in the same launch, on noise: the worst error must stay inside the stated bound.
TEST_P(PreprocessPairedSplit, BenchmarkShapeWithinTolerance) {
  std::mt19937 rng(12);
  std::vector<HostFrame> frames;
  frames.push_back(HostFrame::Make(1920, 1080, PixelFormat::kNV12, 0));
  frames.push_back(HostFrame::Make(1920, 1080, PixelFormat::kP016, 0));
  for (auto& f : frames) {
    for (auto& b : f.bytes) b = static_cast<uint8_t>(rng());
    if (f.info.format == PixelFormat::kP016) {
      for (size_t i = 0; i + 1 < f.bytes.size(); i += 2) f.bytes[i] &= 0xc0;
    }
  }
  const Roi rois[] = {{}, {}};
  ReplayCase bench;
  MakeReplayCase(frames, rois, 960, 544, TensorLayout::kNCHW, TensorType::kFloat16, ResizeMode::kStretch, bench,
                 ChannelOrder::kRGB);
  if (HasFatalFailure()) return;
  EXPECT_EQ(ReplayPairedVariant(GetParam(), bench, 3), 1);
  const double error = PairedReplayError(bench);
  EXPECT_LE(error, CudaPreprocessVariantToleranceLevels(GetParam()));
  std::printf("%s replay, 1080p -> 960x544: worst error %.4f levels beyond FP16 rounding\n",
              CudaPreprocessVariantName(GetParam()), error);
}

// ---------------------------------------------------------------------------------------------------------
// The letterbox mapping.

TEST(LetterboxTransform, MapsContentEdgesOntoRoiEdgesAndRoundTrips) {
  struct Case {
    int frame_w, frame_h, net_w, net_h;
    ResizeMode mode;
    LetterboxPlacement placement;
    Roi roi;
  };
  const Case cases[] = {
      {1280, 720, 416, 416, ResizeMode::kLetterbox, LetterboxPlacement::kTopLeft, {}},
      {1280, 720, 416, 416, ResizeMode::kLetterbox, LetterboxPlacement::kCentre, {}},
      {1920, 1080, 960, 544, ResizeMode::kLetterbox, LetterboxPlacement::kCentre, {}},
      {1920, 1080, 960, 544, ResizeMode::kStretch, LetterboxPlacement::kCentre, {}},
      {641, 479, 640, 640, ResizeMode::kLetterbox, LetterboxPlacement::kCentre, {}},
      {1920, 1080, 300, 300, ResizeMode::kLetterbox, LetterboxPlacement::kCentre, {100, 50, 333, 777}},
      {101, 77, 17, 13, ResizeMode::kStretch, LetterboxPlacement::kCentre, {3, 5, 11, 7}},
  };
  for (const Case& c : cases) {
    FrameInfo f;
    f.width = c.frame_w;
    f.height = c.frame_h;
    f.pitch = c.frame_w + 1;
    PreprocessParams p;
    p.width = c.net_w;
    p.height = c.net_h;
    p.resize = c.mode;
    p.placement = c.placement;
    auto t = ComputeLetterboxTransform(p, f, c.roi);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    const Roi roi = c.roi.width ? c.roi : Roi{0, 0, c.frame_w, c.frame_h};
    SCOPED_TRACE(::testing::Message() << c.frame_w << "x" << c.frame_h << " -> " << c.net_w << "x" << c.net_h);
    // Content edges land on ROI edges.
    EXPECT_NEAR(t->NetworkToSourceX(t->content_x), roi.x, 1e-3);
    EXPECT_NEAR(t->NetworkToSourceY(t->content_y), roi.y, 1e-3);
    EXPECT_NEAR(t->NetworkToSourceX(t->content_x + t->content_width), roi.x + roi.width, 1e-3);
    EXPECT_NEAR(t->NetworkToSourceY(t->content_y + t->content_height), roi.y + roi.height, 1e-3);
    // Inside the network input; letterbox keeps the aspect ratio to within rounding to whole pixels.
    EXPECT_GE(t->content_x, 0);
    EXPECT_LE(t->content_x + t->content_width, c.net_w);
    EXPECT_LE(t->content_y + t->content_height, c.net_h);
    if (c.mode == ResizeMode::kLetterbox) {
      EXPECT_TRUE(t->content_width == c.net_w || t->content_height == c.net_h);
      EXPECT_NEAR(t->scale_x, t->scale_y, 1.0 / std::min(roi.width, roi.height));
      if (c.placement == LetterboxPlacement::kTopLeft) {
        EXPECT_EQ(t->content_x, 0);
        EXPECT_EQ(t->content_y, 0);
      } else {
        EXPECT_LE(std::abs((c.net_w - t->content_width) - 2 * t->content_x), 1);
        EXPECT_LE(std::abs((c.net_h - t->content_height) - 2 * t->content_y), 1);
      }
    } else {
      EXPECT_EQ(t->content_width, c.net_w);
      EXPECT_EQ(t->content_height, c.net_h);
    }
    for (float x : {0.0f, 13.25f, 200.5f, 415.0f}) {
      EXPECT_NEAR(t->SourceToNetworkX(t->NetworkToSourceX(x)), x, 1e-3);
      EXPECT_NEAR(t->SourceToNetworkY(t->NetworkToSourceY(x)), x, 1e-3);
    }
    float box[4] = {static_cast<float>(t->content_x), static_cast<float>(t->content_y),
                    static_cast<float>(t->content_x + t->content_width),
                    static_cast<float>(t->content_y + t->content_height)};
    t->NetworkBoxToSource(box);
    EXPECT_NEAR(box[0], roi.x, 1e-3);
    EXPECT_NEAR(box[3], roi.y + roi.height, 1e-3);
  }
  // YOLOX: 1280x720 into 416x416, top-left: scale 0.325, content 416x234.
  FrameInfo f;
  f.width = 1280;
  f.height = 720;
  f.pitch = 1280;
  PreprocessParams p;
  p.width = p.height = 416;
  p.resize = ResizeMode::kLetterbox;
  p.placement = LetterboxPlacement::kTopLeft;
  auto t = ComputeLetterboxTransform(p, f, {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->content_width, 416);
  EXPECT_EQ(t->content_height, 234);
  EXPECT_FLOAT_EQ(t->scale_x, 0.325f);
  EXPECT_FLOAT_EQ(t->scale_y, 0.325f);
  EXPECT_FLOAT_EQ(t->offset_x, 0.0f);
}

// ---------------------------------------------------------------------------------------------------------
// Validation.

TEST(PreprocessCpu, RejectsInvalidParameters) {
  PreprocessParams p;
  EXPECT_EQ(ValidateParams(p).code(), StatusCode::kInvalidArgument) << "zero size";
  p.width = 64;
  p.height = 64;
  EXPECT_TRUE(ValidateParams(p).ok());
  p.std[1] = 0;
  EXPECT_EQ(ValidateParams(p).code(), StatusCode::kInvalidArgument) << "zero std";
  p.std[1] = 1;
  p.mean[2] = std::nanf("");
  EXPECT_EQ(ValidateParams(p).code(), StatusCode::kInvalidArgument) << "NaN mean";
  p.mean[2] = 0;
  p.width = 100000;
  EXPECT_EQ(ValidateParams(p).code(), StatusCode::kInvalidArgument) << "huge";
  p.width = 64;
  EXPECT_EQ(CreatePreprocessor(PreprocessParams{}, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreatePreprocessor(p, {.max_batch = 0}).status().code(), StatusCode::kInvalidArgument);
#ifndef VIDSCAN_HAVE_CUDA
  EXPECT_EQ(CreatePreprocessor(p, {.device = PreprocessDevice::kCuda}).status().code(), StatusCode::kUnavailable);
#endif

  HostFrame f = HostFrame::Make(32, 18, PixelFormat::kNV12);
  auto expect_roi = [&](Roi roi, StatusCode code, const char* what) {
    auto t = ComputeLetterboxTransform(p, f.info, roi);
    EXPECT_EQ(t.status().code(), code) << what << ": " << t.status().ToString();
  };
  expect_roi({}, StatusCode::kOk, "whole frame");
  expect_roi({0, 0, 32, 18}, StatusCode::kOk, "whole frame explicitly");
  expect_roi({31, 17, 1, 1}, StatusCode::kOk, "last pixel");
  expect_roi({0, 0, 33, 18}, StatusCode::kInvalidArgument, "too wide");
  expect_roi({-1, 0, 8, 8}, StatusCode::kInvalidArgument, "negative x");
  expect_roi({30, 0, 4, 4}, StatusCode::kInvalidArgument, "past the right edge");
  expect_roi({0, 15, 4, 4}, StatusCode::kInvalidArgument, "past the bottom");
  expect_roi({4, 4, 0, 8}, StatusCode::kInvalidArgument, "empty");

  FrameInfo bad = f.info;
  bad.pitch = 31;
  EXPECT_EQ(ComputeLetterboxTransform(p, bad, {}).status().code(), StatusCode::kInvalidArgument) << "pitch";
  bad = f.info;
  bad.width = 0;
  EXPECT_EQ(ComputeLetterboxTransform(p, bad, {}).status().code(), StatusCode::kInvalidArgument) << "width 0";
  bad = f.info;
  bad.format = PixelFormat::kP016;
  bad.pitch = 65;
  EXPECT_EQ(ComputeLetterboxTransform(p, bad, {}).status().code(), StatusCode::kInvalidArgument) << "odd p016";

  // Run-time checks: slots, memory kind, batch size.
  auto pre = CreatePreprocessor(p, {.max_batch = 2});
  ASSERT_TRUE(pre.ok());
  std::vector<float> tensor(p.slot_elements() * 2);
  const BatchTensor out{tensor.data(), 2, MemoryKind::kHost};
  auto run = [&](std::vector<PreprocessInput> inputs, const BatchTensor& o) {
    return (*pre)->Run(inputs, o).status().code();
  };
  const FrameView view = f.View();
  EXPECT_EQ(run({{view, {}, 0}, {view, {}, 1}}, out), StatusCode::kOk);
  EXPECT_EQ(run({{view, {}, 2}}, out), StatusCode::kInvalidArgument) << "slot outside the tensor";
  EXPECT_EQ(run({{view, {}, -1}}, out), StatusCode::kInvalidArgument) << "negative slot";
  EXPECT_EQ(run({{view, {}, 1}, {view, {}, 1}}, out), StatusCode::kInvalidArgument) << "slot twice";
  EXPECT_EQ(run({{view, {}, 0}, {view, {}, 1}, {view, {}, 0}}, out), StatusCode::kInvalidArgument) << "max_batch";
  EXPECT_EQ(run({{view, {0, 0, 64, 64}, 0}}, out), StatusCode::kInvalidArgument) << "ROI outside";
  FrameView device_view = view;
  device_view.memory = MemoryKind::kDevice;
  EXPECT_EQ(run({{device_view, {}, 0}}, out), StatusCode::kInvalidArgument) << "device frame on the CPU";
  EXPECT_EQ(run({{view, {}, 0}}, {tensor.data(), 2, MemoryKind::kDevice}), StatusCode::kInvalidArgument);
  EXPECT_EQ(run({{view, {}, 0}}, {nullptr, 2, MemoryKind::kHost}), StatusCode::kInvalidArgument) << "no tensor";
  FrameView no_planes = view;
  no_planes.chroma = nullptr;
  EXPECT_EQ(run({{no_planes, {}, 0}}, out), StatusCode::kInvalidArgument) << "no chroma plane";
  EXPECT_EQ(run({}, out), StatusCode::kOk) << "an empty batch is fine";
}

}  // namespace
}  // namespace vidscan
