// The fused CUDA preprocess kernel against the CPU reference on random frames: sizes (odd too), pitches,
// NV12/P016, every colour space and range, ROIs, stretch and letterbox (both placements), both layouts and
// precisions, shrinking by more than 2x (area path) and enlarging, many mixed frames in one launch.
//
// Tolerance (in 8-bit levels before normalisation, scaled by |scale/std| after it), per variant
// (CudaPreprocessVariantToleranceLevels): v1 and v2 compute the same float expressions and get
// bit-identical sample positions and interpolated samples, so they differ only by FMA contraction in the
// colour matrix and normalisation (a few ulps of values up to ~600): FP32 must agree within 0.01 levels.
// v3 quantises its horizontal weights to 2^-15 (at most 0.013 levels through the colour matrix): 0.02.
// FP16 adds its own rounding: one half-precision ulp of the value (2^-10 relative), as a tie may round
// either way after that. v3 is also compared with its CPU replay bit for bit (PreprocessCudaPaired.KernelEqualsItsCpuReplay).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu/cuda_test_support.h"
#include "preprocess/cuda_buffers.h"
#include "preprocess/float16.h"
#include "preprocess/frame_descriptor.h"
#include "preprocess/paired_rows.h"
#include "preprocess/preprocess.h"
#include "preprocess/unfused_cuda.h"
#include "support/paired_replay.h"

namespace vidscan {
namespace {

// A frame in host memory and its copy in device memory.
struct TestFrame {
  FrameInfo info;
  std::vector<uint8_t> host;  // luma plane then chroma plane, `pitch` bytes a row
  DeviceBuffer device;

  FrameView HostView() {
    FrameView v;
    v.info = info;
    v.memory = MemoryKind::kHost;
    v.luma = host.data();
    v.chroma = host.data() + info.luma_bytes();
    return v;
  }
  FrameView DeviceView() const {
    FrameView v;
    v.info = info;
    v.memory = MemoryKind::kDevice;
    v.luma = device.as<uint8_t>();
    v.chroma = device.as<uint8_t>() + info.luma_bytes();
    return v;
  }
};

struct SampleRange {
  int y_lo = 0, y_hi = 255, c_lo = 0, c_hi = 255;  // 8-bit code values (P016 scales them by 4)
  bool chroma_without_vertical_detail = false;  // every chroma row a copy of the first
};

TestFrame MakeFrame(std::mt19937_64& rng, int width, int height, PixelFormat format, ColorSpace space,
                    ColorRange range, SampleRange samples = {}, bool pitch_multiple_of_16 = false) {
  TestFrame f;
  f.info.width = width;
  f.info.height = height;
  f.info.format = format;
  f.info.color_space = space;
  f.info.color_range = range;
  const int min_pitch = std::max(f.info.row_bytes(), f.info.chroma_row_bytes());
  int pitch = min_pitch + static_cast<int>(rng() % 97);
  if (format == PixelFormat::kP016) pitch += pitch % 2;
  if (rng() % 2 || pitch_multiple_of_16) pitch = (pitch + 15) / 16 * 16;  // the staged kernel (v2) takes only 16-byte aligned rows
  f.info.pitch = pitch;
  f.host.resize(f.info.luma_bytes() + f.info.chroma_bytes());
  auto sample = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
  for (size_t i = 0; i < f.host.size(); ++i) f.host[i] = static_cast<uint8_t>(rng());  // padding bytes too
  const int bytes = BytesPerSample(format);
  auto put = [&](size_t offset, int value8) {
    if (format == PixelFormat::kNV12) {
      f.host[offset] = static_cast<uint8_t>(value8);
    } else {
      // A 10-bit value (8-bit code * 4 + random low bits) in the high bits of 16.
      const uint16_t v = static_cast<uint16_t>(((value8 * 4 + static_cast<int>(rng() % 4)) & 1023) << 6);
      std::memcpy(&f.host[offset], &v, 2);
    }
  };
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) put(static_cast<size_t>(y) * pitch + x * bytes, sample(samples.y_lo, samples.y_hi));
  }
  for (int y = 0; y < f.info.chroma_height(); ++y) {
    if (y > 0 && samples.chroma_without_vertical_detail) {
      const size_t first = f.info.luma_bytes();
      std::memcpy(&f.host[first + static_cast<size_t>(y) * pitch], &f.host[first], (width + 1) / 2 * 2 * bytes);
      continue;
    }
    for (int x = 0; x < (width + 1) / 2 * 2; ++x) {
      put(f.info.luma_bytes() + static_cast<size_t>(y) * pitch + x * bytes, sample(samples.c_lo, samples.c_hi));
    }
  }
  auto buffer = DeviceBuffer::Allocate(f.host.size());
  EXPECT_TRUE(buffer.ok()) << buffer.status().ToString();
  if (buffer.ok()) {
    f.device = std::move(*buffer);
    EXPECT_EQ(cudaMemcpy(f.device.data(), f.host.data(), f.host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  return f;
}

float ElementAsFloat(const std::vector<uint8_t>& tensor, TensorType type, size_t index) {
  return TensorElementAsFloat(tensor.data(), type, index);
}

struct BatchCase {
  PreprocessParams params;
  std::vector<PreprocessInput> host_inputs, device_inputs;
  int slots = 0;

  // The frame (or its ROI) goes into `slot`; its storage must outlive the case.
  void Add(TestFrame& frame, int slot, Roi roi = {}) {
    host_inputs.push_back({frame.HostView(), roi, slot});
    device_inputs.push_back({frame.DeviceView(), roi, slot});
  }
};

// Runs the batch on both implementations and checks every element of every written slot; slots no input
// names must keep the poison.
void CompareGpuWithCpu(const BatchCase& c, uint64_t seed, CudaPreprocessVariant variant) {
  const float tolerance_levels = CudaPreprocessVariantToleranceLevels(variant);
  SCOPED_TRACE(::testing::Message() << "seed " << seed << " variant " << CudaPreprocessVariantName(variant));
  const PreprocessParams& params = c.params;
  PreprocessParams reference_params = params;
  reference_params.type = TensorType::kFloat32;
  auto cpu = CreatePreprocessor(reference_params, {.device = PreprocessDevice::kCpu, .max_batch = 256});
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  std::vector<uint8_t> reference(reference_params.slot_bytes() * c.slots);
  auto cpu_transforms = (*cpu)->Run(c.host_inputs, {reference.data(), c.slots, MemoryKind::kHost});
  ASSERT_TRUE(cpu_transforms.ok()) << cpu_transforms.status().ToString();

  auto gpu = CreatePreprocessor(params,
                                {.device = PreprocessDevice::kCuda, .max_batch = 256, .cuda_variant = variant});
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  const size_t bytes = params.slot_bytes() * c.slots;
  auto tensor = DeviceBuffer::Allocate(bytes);
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  ASSERT_EQ(cudaMemset(tensor->data(), 0xff, bytes), cudaSuccess);  // NaN in FP16 and FP32
  auto gpu_transforms = (*gpu)->Run(c.device_inputs, {tensor->data(), c.slots, MemoryKind::kDevice});
  ASSERT_TRUE(gpu_transforms.ok()) << gpu_transforms.status().ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint8_t> result(bytes);
  ASSERT_EQ(cudaMemcpy(result.data(), tensor->data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);

  ASSERT_EQ(gpu_transforms->size(), cpu_transforms->size());
  for (size_t i = 0; i < gpu_transforms->size(); ++i) {
    EXPECT_EQ((*gpu_transforms)[i].scale_x, (*cpu_transforms)[i].scale_x);
    EXPECT_EQ((*gpu_transforms)[i].offset_y, (*cpu_transforms)[i].offset_y);
  }

  std::vector<bool> written(c.slots, false);
  for (const auto& in : c.device_inputs) written[in.slot] = true;
  const size_t slot_elements = params.slot_elements();
  const size_t plane = static_cast<size_t>(params.width) * params.height;
  int reported = 0;
  double worst = 0;
  size_t bad = 0;
  for (int slot = 0; slot < c.slots; ++slot) {
    if (!written[slot]) {
      for (size_t b = 0; b < params.slot_bytes(); ++b) {
        if (result[slot * params.slot_bytes() + b] != 0xff) {
          ADD_FAILURE() << "slot " << slot << " is not an input's but byte " << b << " was overwritten";
          break;
        }
      }
      continue;
    }
    for (size_t e = 0; e < slot_elements; ++e) {
      const size_t index = slot * slot_elements + e;
      const int channel = params.layout == TensorLayout::kNCHW ? static_cast<int>(e / plane) : static_cast<int>(e % 3);
      const float want = ElementAsFloat(reference, TensorType::kFloat32, index);
      const float got = ElementAsFloat(result, params.type, index);
      const float level = std::fabs(params.scale[channel] / params.std[channel]);
      float tolerance = tolerance_levels * level + 1e-5f * std::fabs(want);
      if (params.type == TensorType::kFloat16) tolerance += std::fabs(want) * (1.0f / 1024) + 6e-8f;
      const float error = std::fabs(got - want);
      const bool ok = std::isfinite(got) && error <= tolerance;
      if (std::isfinite(got)) worst = std::max(worst, static_cast<double>(error / std::max(level, 1e-12f)));
      if (!ok) {
        ++bad;
        if (reported++ < 10) {
          const size_t pixel = params.layout == TensorLayout::kNCHW ? e % plane : e / 3;
          ADD_FAILURE() << "slot " << slot << " channel " << channel << " pixel (" << pixel % params.width << ", "
                        << pixel / params.width << "): gpu " << got << " cpu " << want << " tolerance " << tolerance;
        }
      }
    }
  }
  EXPECT_EQ(bad, 0u) << "elements wrong or never written (NaN); worst error " << worst << " levels";
}

const PixelFormat kFormats[] = {PixelFormat::kNV12, PixelFormat::kP016};
const ColorSpace kSpaces[] = {ColorSpace::kBT601, ColorSpace::kBT709, ColorSpace::kBT2020};
const ColorRange kRanges[] = {ColorRange::kLimited, ColorRange::kFull};

// Every kernel variant must compute the reference function; each test below runs once per variant.
class PreprocessCudaVariant : public ::testing::TestWithParam<CudaPreprocessVariant> {};

INSTANTIATE_TEST_SUITE_P(PreprocessCuda, PreprocessCudaVariant,
                         ::testing::ValuesIn(AllCudaPreprocessVariants().begin(), AllCudaPreprocessVariants().end()),
                         [](const ::testing::TestParamInfo<CudaPreprocessVariant>& info) {
                           std::string name = CudaPreprocessVariantName(info.param);  // "v2-r2" -> "v2_r2"
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// One random batch per layout x precision x resize mode: mixed sizes, formats, colour, ROIs and slots.
TEST_P(PreprocessCudaVariant, RandomMixedBatchesMatchCpuReference) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = FreshSeed();
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
  auto real = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  int combination = 0;
  int frame_counter = 0;
  for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
    for (TensorType type : {TensorType::kFloat16, TensorType::kFloat32}) {
      for (int mode = 0; mode < 3; ++mode) {
        SCOPED_TRACE(::testing::Message() << "combination " << combination++ << " layout " << static_cast<int>(layout)
                                        << " type " << static_cast<int>(type) << " mode " << mode);
        BatchCase c;
        PreprocessParams& p = c.params;
        p.width = uniform(1, 12) == 1 ? uniform(1, 9) : uniform(16, 320);
        p.height = uniform(1, 12) == 1 ? uniform(1, 9) : uniform(16, 320);
        if (uniform(0, 1)) p.width = (p.width + 7) / 8 * 8;  // the 16-byte store path
        p.layout = layout;
        p.type = type;
        p.order = uniform(0, 1) ? ChannelOrder::kRGB : ChannelOrder::kBGR;
        p.resize = mode == 0 ? ResizeMode::kStretch : ResizeMode::kLetterbox;
        p.placement = mode == 2 ? LetterboxPlacement::kTopLeft : LetterboxPlacement::kCentre;
        for (int ch = 0; ch < 3; ++ch) {
          p.scale[ch] = uniform(0, 1) ? 1.0f : real(0.002f, 2.0f);
          p.mean[ch] = real(-50.0f, 150.0f);
          p.std[ch] = real(0.2f, 80.0f) * (uniform(0, 5) == 0 ? -1.0f : 1.0f);
          p.pad[ch] = real(0.0f, 255.0f);
        }
        const int frames = uniform(3, 7);
        c.slots = frames + uniform(0, 2);
        std::vector<int> slots(c.slots);
        for (int s = 0; s < c.slots; ++s) slots[s] = s;
        std::shuffle(slots.begin(), slots.end(), rng);
        std::vector<TestFrame> storage;
        storage.reserve(frames);
        for (int i = 0; i < frames; ++i, ++frame_counter) {
          // The counter walks every format x colour space x range (12 frames) and every size class, so
          // each run covers them all (at least 36 frames); the rest is random.
          const PixelFormat format = kFormats[frame_counter % 2];
          const ColorSpace space = kSpaces[(frame_counter / 2) % 3];
          const ColorRange range = kRanges[(frame_counter / 6) % 2];
          int w, h;
          switch (frame_counter % 4) {
            case 0:  // shrink by more than 2x: the area path
              w = uniform(5 * std::max(p.width, 8) / 2, 6 * std::max(p.width, 8));
              h = uniform(5 * std::max(p.height, 8) / 2, 6 * std::max(p.height, 8));
              break;
            case 1:  // tiny source: enlarging, clamping at every edge
              w = uniform(1, 7);
              h = uniform(1, 7);
              break;
            default:
              w = uniform(2, 3 * std::max(p.width, 16));
              h = uniform(2, 3 * std::max(p.height, 16));
          }
          storage.push_back(MakeFrame(rng, std::min(w, 1700), std::min(h, 1500), format, space, range));
          TestFrame& f = storage.back();
          Roi roi;
          if (frame_counter % 3 == 0 || uniform(0, 3) == 0) {
            roi.width = uniform(1, f.info.width);
            roi.height = uniform(1, f.info.height);
            roi.x = uniform(0, f.info.width - roi.width);
            roi.y = uniform(0, f.info.height - roi.height);
          }
          c.Add(f, slots[i], roi);
        }
        CompareGpuWithCpu(c, seed, GetParam());
      }
    }
  }
}

// The benchmark's shape: 1080p NV12 -> 960x544 FP16 NCHW (the bilinear fast path and 16-byte stores),
// plus a 10-bit and a BT.601 full-range frame in the same launch.
TEST_P(PreprocessCudaVariant, FullHdBatchMatchesCpuReference) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = FreshSeed();
  std::mt19937_64 rng(seed);
  BatchCase c;
  c.params.width = 960;
  c.params.height = 544;
  c.params.scale = {1.0f / 255, 1.0f / 255, 1.0f / 255};
  std::vector<TestFrame> storage;
  // 16-byte multiple pitches (as NVDEC's): the staged kernel (v2) takes these frames itself.
  storage.push_back(MakeFrame(rng, 1920, 1080, PixelFormat::kNV12, ColorSpace::kBT709, ColorRange::kLimited, {}, true));
  storage.push_back(MakeFrame(rng, 1920, 1080, PixelFormat::kP016, ColorSpace::kBT2020, ColorRange::kLimited, {}, true));
  storage.push_back(MakeFrame(rng, 1280, 720, PixelFormat::kNV12, ColorSpace::kBT601, ColorRange::kFull, {}, true));
  storage.push_back(MakeFrame(rng, 1920, 1080, PixelFormat::kNV12, ColorSpace::kBT709, ColorRange::kLimited));
  c.slots = 4;
  for (int i = 0; i < 4; ++i) c.Add(storage[i], i);
  CompareGpuWithCpu(c, seed, GetParam());
  c.params.resize = ResizeMode::kLetterbox;
  c.params.layout = TensorLayout::kNHWC;
  CompareGpuWithCpu(c, seed, GetParam());
}

// v3 on the GPU equals its CPU replay (tests/support/paired_replay.h) bit for bit on the frames it takes:
// the device's PRMT, DP2A, FFMA.SAT and F2FP do exactly what paired_rows.h's host twins do, and the CPU
// tests check that replay against the reference. A failure here, with the tolerance test passing or not,
// says the device and the host model of the kernel disagree (and where).
class PreprocessCudaPaired : public ::testing::TestWithParam<CudaPreprocessVariant> {};

INSTANTIATE_TEST_SUITE_P(PreprocessCuda, PreprocessCudaPaired,
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

TEST_P(PreprocessCudaPaired, KernelEqualsItsCpuReplay) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = FreshSeed();
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
  auto real = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  int frame_counter = 0, taken_total = 0;
  for (TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
    for (TensorType type : {TensorType::kFloat16, TensorType::kFloat32}) {
      for (ChannelOrder order : {ChannelOrder::kRGB, ChannelOrder::kBGR}) {
        for (ResizeMode mode : {ResizeMode::kStretch, ResizeMode::kLetterbox}) {
          SCOPED_TRACE(::testing::Message() << "seed " << seed << " variant " << CudaPreprocessVariantName(GetParam())
                                          << " layout " << static_cast<int>(layout) << " type "
                                          << static_cast<int>(type) << " order " << static_cast<int>(order)
                                          << " mode " << static_cast<int>(mode));
          BatchCase c;
          PreprocessParams& p = c.params;
          p.width = 2 * uniform(4, 360);  // v3 wants an even width; partial strips and full ones
          p.height = uniform(1, 300);
          p.layout = layout;
          p.type = type;
          p.order = order;
          p.resize = mode;
          p.placement = uniform(0, 1) ? LetterboxPlacement::kCentre : LetterboxPlacement::kTopLeft;
          for (int ch = 0; ch < 3; ++ch) {
            p.scale[ch] = real(0.002f, 2.0f);
            p.mean[ch] = real(-50.0f, 150.0f);
            p.std[ch] = real(0.2f, 80.0f) * (uniform(0, 5) == 0 ? -1.0f : 1.0f);
            p.pad[ch] = real(0.0f, 255.0f);
          }
          const int frames = uniform(2, 5);
          c.slots = frames;
          std::vector<TestFrame> storage;
          storage.reserve(frames);
          for (int i = 0; i < frames; ++i, ++frame_counter) {
            // Steps from enlargement to just under 2 (v3's range), every colour space and range.
            const int w = std::min(1700, std::max(2, static_cast<int>(p.width * real(0.05f, 1.98f))));
            const int h = std::min(1500, std::max(2, static_cast<int>(p.height * real(0.05f, 1.98f))));
            storage.push_back(MakeFrame(rng, w, h, PixelFormat::kNV12, kSpaces[frame_counter % 3],
                                        kRanges[(frame_counter / 3) % 2], {}, true));
            Roi roi;
            if (uniform(0, 2) == 0) {
              roi.width = uniform(1, w);
              roi.height = uniform(1, h);
              roi.x = uniform(0, w - roi.width);
              roi.y = uniform(0, h - roi.height);
            }
            c.Add(storage.back(), i, roi);
          }
          auto gpu = CreatePreprocessor(p, {.device = PreprocessDevice::kCuda, .max_batch = 16, .cuda_variant = GetParam()});
          ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
          const size_t bytes = p.slot_bytes() * c.slots;
          auto tensor = DeviceBuffer::Allocate(bytes);
          ASSERT_TRUE(tensor.ok());
          ASSERT_EQ(cudaMemset(tensor->data(), 0xff, bytes), cudaSuccess);
          ASSERT_TRUE((*gpu)->Run(c.device_inputs, {tensor->data(), c.slots, MemoryKind::kDevice}).ok());
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          std::vector<uint8_t> result(bytes), replay(bytes, 0xff);
          ASSERT_EQ(cudaMemcpy(result.data(), tensor->data(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
          std::vector<preprocess_detail::FrameDescriptor> taken;
          for (size_t i = 0; i < c.host_inputs.size(); ++i) {
            const PreprocessInput& host = c.host_inputs[i];
            const PreprocessInput& device = c.device_inputs[i];
            auto t = ComputeLetterboxTransform(p, host.frame.info, host.roi);
            ASSERT_TRUE(t.ok());
            // What Run decided (device planes and slot); the replay reads the host copy and writes `replay`.
            const auto on_device = preprocess_detail::MakeFrameDescriptor(
                p, device, *t, static_cast<uint8_t*>(tensor->data()) + p.slot_bytes() * device.slot);
            if (!preprocess_detail::PairedKernelTakes(on_device, p)) continue;
            auto on_host = preprocess_detail::MakeFrameDescriptor(p, host, *t, replay.data() + p.slot_bytes() * host.slot);
            ASSERT_TRUE(preprocess_detail::PairedKernelTakes(on_host, p)) << "host copy aligned differently";
            taken.push_back(on_host);
          }
          preprocess_detail::VisitPairedShape(GetParam(), 0, [&](auto shape) {
            test::ReplayPairedLaunch<decltype(shape)>(p, taken, 5);
            return 0;
          });
          if (HasFatalFailure()) return;
          taken_total += static_cast<int>(taken.size());
          for (const auto& d : taken) {
            const size_t begin = static_cast<const uint8_t*>(d.out) - replay.data();
            for (size_t b = begin; b < begin + p.slot_bytes(); ++b) {
              if (result[b] != replay[b]) {
                const size_t element = (b - begin) / TensorTypeBytes(type);
                ADD_FAILURE() << "slot " << begin / p.slot_bytes() << " element " << element << ": gpu "
                              << TensorElementAsFloat(result.data(), type, b / TensorTypeBytes(type)) << " replay "
                              << TensorElementAsFloat(replay.data(), type, b / TensorTypeBytes(type));
                break;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(taken_total, 20) << "v3 must take most of these frames";
}

// The benchmark's unfused baseline: two 8-bit intermediates, so within 1 level of the reference, on
// pictures inside the RGB gamut (outside it, clamping before vs after the resize legitimately differs)
// whose chroma has no vertical detail. The baseline interpolates chroma twice: pass 1 upsamples it to
// full size (bilinear, chroma rows sit between luma rows), pass 2 resamples that. The upsampled chroma is
// piecewise linear in y with knots halfway between luma rows, so a resize tap spanning a knot averages
// across it: on chroma noise that differs from sampling the chroma plane once by up to ~1/8 of the
// second difference (a numpy emulation of both gives 14.6 levels on this test's noise, the H100 run 14.9;
// 0.99 with vertically constant chroma). Horizontally the 2x shrink puts every tap between a knot
// (even luma column) and its neighbour, so chroma noise along x stays in the test.
TEST(PreprocessCuda, UnfusedBaselineWithinOneLevel) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = FreshSeed();
  std::mt19937_64 rng(seed);
  BatchCase c;
  c.params.width = 320;
  c.params.height = 184;
  c.params.order = ChannelOrder::kBGR;
  c.params.scale = {1.0f / 255, 1.0f / 255, 1.0f / 255};
  c.params.mean = {0.485f, 0.456f, 0.406f};
  c.params.std = {0.229f, 0.224f, 0.225f};
  const int width = 640, height = 360;
  std::vector<TestFrame> storage;
  c.slots = 4;
  storage.reserve(c.slots);
  for (int i = 0; i < c.slots; ++i) {
    storage.push_back(MakeFrame(rng, width, height, PixelFormat::kNV12, ColorSpace::kBT709, ColorRange::kLimited,
                                SampleRange{48, 200, 112, 144, true}));
    c.Add(storage[i], i);
  }
  PreprocessParams reference_params = c.params;
  reference_params.type = TensorType::kFloat32;
  auto cpu = CreatePreprocessor(reference_params, {});
  ASSERT_TRUE(cpu.ok());
  std::vector<uint8_t> reference(reference_params.slot_bytes() * c.slots);
  ASSERT_TRUE((*cpu)->Run(c.host_inputs, {reference.data(), c.slots, MemoryKind::kHost}).ok());

  auto unfused = UnfusedPreprocessor::Create(c.params, width, height, c.slots, nullptr);
  ASSERT_TRUE(unfused.ok()) << unfused.status().ToString();
  auto tensor = DeviceBuffer::Allocate(c.params.slot_bytes() * c.slots);
  ASSERT_TRUE(tensor.ok());
  ASSERT_EQ(cudaMemset(tensor->data(), 0xff, tensor->bytes()), cudaSuccess);
  Status st = (*unfused)->Run(c.device_inputs, {tensor->data(), c.slots, MemoryKind::kDevice});
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint8_t> result(tensor->bytes());
  ASSERT_EQ(cudaMemcpy(result.data(), tensor->data(), result.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  const size_t plane = static_cast<size_t>(c.params.width) * c.params.height;
  double worst = 0;
  for (size_t i = 0; i < c.params.slot_elements() * c.slots; ++i) {
    const int channel = static_cast<int>((i / plane) % 3);
    const float level = std::fabs(c.params.scale[channel] / c.params.std[channel]);
    const float want = ElementAsFloat(reference, TensorType::kFloat32, i);
    const float got = ElementAsFloat(result, c.params.type, i);
    ASSERT_TRUE(std::isfinite(got)) << "element " << i << " never written; seed " << seed;
    worst = std::max(worst, static_cast<double>(std::fabs(got - want) / level));
  }
  // Two roundings of half a level each, plus FP16 rounding of values up to ~2.6 (2^-10 * 2.6 / level).
  EXPECT_LE(worst, 1.0 + 2.7 / 1024 / (1.0 / 255 / 0.229)) << "seed " << seed;
  std::printf("unfused baseline: worst error %.3f levels\n", worst);
}

TEST(PreprocessCuda, RejectsHostMemory) {
  SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(1);
  PreprocessParams p;
  p.width = 64;
  p.height = 64;
  auto gpu = CreatePreprocessor(p, {.device = PreprocessDevice::kCuda, .max_batch = 2});
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  TestFrame f = MakeFrame(rng, 32, 32, PixelFormat::kNV12, ColorSpace::kBT709, ColorRange::kLimited);
  auto tensor = DeviceBuffer::Allocate(p.slot_bytes());
  ASSERT_TRUE(tensor.ok());
  std::vector<PreprocessInput> inputs = {{f.HostView(), {}, 0}};
  auto r = (*gpu)->Run(inputs, {tensor->data(), 1, MemoryKind::kDevice});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  inputs = {{f.DeviceView(), {}, 0}, {f.DeviceView(), {}, 1}, {f.DeviceView(), {}, 2}};
  r = (*gpu)->Run(inputs, {tensor->data(), 3, MemoryKind::kDevice});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "3 inputs exceed max_batch 2";
}

}  // namespace
}  // namespace vidscan
