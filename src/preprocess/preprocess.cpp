#include "preprocess/preprocess.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "preprocess/float16.h"
#include "preprocess/frame_descriptor.h"

namespace vidscan {

namespace preprocess_detail {
// Defined in preprocess_cuda.cu (CUDA builds only).
Expected<std::unique_ptr<Preprocessor>> CreateCudaPreprocessor(const PreprocessParams& params,
                                                               const PreprocessorOptions& options);
}  // namespace preprocess_detail

namespace {

using preprocess_detail::FrameDescriptor;

// Sizes beyond this lose sub-pixel precision in float sample positions.
constexpr int kMaxDimension = 16384;

bool AllFinite(const std::array<float, 3>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

Status InvalidArgument(const std::string& message) { return MakeError(StatusCode::kInvalidArgument, message); }

Status ValidateFrame(const FrameInfo& f) {
  if (f.width < 1 || f.height < 1 || f.width > kMaxDimension || f.height > kMaxDimension) {
    return InvalidArgument(fmt::format("frame size {}x{} is outside 1..{}", f.width, f.height, kMaxDimension));
  }
  if (f.pitch < f.row_bytes() || f.pitch < f.chroma_row_bytes()) {
    return InvalidArgument(fmt::format("pitch {} is smaller than a {} row of width {} ({} bytes)", f.pitch,
                                       PixelFormatName(f.format), f.width,
                                       std::max(f.row_bytes(), f.chroma_row_bytes())));
  }
  if (f.format == PixelFormat::kP016 && f.pitch % 2 != 0) {
    return InvalidArgument(fmt::format("p016 pitch {} is odd: 16-bit samples must be aligned", f.pitch));
  }
  return Status::Ok();
}

Status ValidateRoi(const FrameInfo& f, const Roi& roi) {
  if (roi.width == 0 && roi.height == 0 && roi.x == 0 && roi.y == 0) return Status::Ok();
  if (roi.width <= 0 || roi.height <= 0) {
    return InvalidArgument(fmt::format("ROI {}x{} is empty", roi.width, roi.height));
  }
  if (roi.x < 0 || roi.y < 0 || roi.x > f.width - roi.width || roi.y > f.height - roi.height) {
    return InvalidArgument(fmt::format("ROI {}x{} at ({}, {}) is outside the {}x{} frame", roi.width, roi.height,
                                       roi.x, roi.y, f.width, f.height));
  }
  return Status::Ok();
}

Roi EffectiveRoi(const FrameInfo& f, const Roi& roi) {
  if (roi.width == 0 && roi.height == 0) return Roi{0, 0, f.width, f.height};
  return roi;
}

// Kr and Kb of the frame's matrix (ITU-R BT.601, BT.709, BT.2020 non-constant luminance).
void MatrixConstants(ColorSpace c, double* kr, double* kb) {
  switch (c) {
    case ColorSpace::kBT601: *kr = 0.299; *kb = 0.114; return;
    case ColorSpace::kBT709: *kr = 0.2126; *kb = 0.0722; return;
    case ColorSpace::kBT2020: *kr = 0.2627; *kb = 0.0593; return;
  }
  *kr = 0.2126;
  *kb = 0.0722;
}

}  // namespace

Status ValidateParams(const PreprocessParams& p) {
  if (p.width < 1 || p.height < 1 || p.width > kMaxDimension || p.height > kMaxDimension) {
    return InvalidArgument(fmt::format("network input size {}x{} is outside 1..{}", p.width, p.height,
                                       kMaxDimension));
  }
  if (!AllFinite(p.scale) || !AllFinite(p.mean) || !AllFinite(p.std) || !AllFinite(p.pad)) {
    return InvalidArgument("scale, mean, std and pad must be finite");
  }
  for (float s : p.std) {
    if (s == 0.0f) return InvalidArgument("std must not be zero");
  }
  return Status::Ok();
}

Expected<LetterboxTransform> ComputeLetterboxTransform(const PreprocessParams& params, const FrameInfo& frame,
                                                       const Roi& requested_roi) {
  VS_RETURN_IF_ERROR(ValidateParams(params));
  VS_RETURN_IF_ERROR(ValidateFrame(frame));
  VS_RETURN_IF_ERROR(ValidateRoi(frame, requested_roi));
  const Roi roi = EffectiveRoi(frame, requested_roi);
  LetterboxTransform t;
  if (params.resize == ResizeMode::kStretch) {
    t.content_width = params.width;
    t.content_height = params.height;
  } else {
    const double s = std::min(static_cast<double>(params.width) / roi.width,
                              static_cast<double>(params.height) / roi.height);
    t.content_width = std::clamp(static_cast<int>(std::lround(roi.width * s)), 1, params.width);
    t.content_height = std::clamp(static_cast<int>(std::lround(roi.height * s)), 1, params.height);
    if (params.placement == LetterboxPlacement::kCentre) {
      t.content_x = (params.width - t.content_width) / 2;
      t.content_y = (params.height - t.content_height) / 2;
    }
  }
  const double sx = static_cast<double>(t.content_width) / roi.width;
  const double sy = static_cast<double>(t.content_height) / roi.height;
  t.scale_x = static_cast<float>(sx);
  t.scale_y = static_cast<float>(sy);
  t.offset_x = static_cast<float>(t.content_x - roi.x * sx);
  t.offset_y = static_cast<float>(t.content_y - roi.y * sy);
  return t;
}

namespace preprocess_detail {

FrameDescriptor MakeFrameDescriptor(const PreprocessParams& params, const PreprocessInput& input,
                                    const LetterboxTransform& t, void* out) {
  const FrameInfo& f = input.frame.info;
  const Roi roi = EffectiveRoi(f, input.roi);
  FrameDescriptor d;
  d.luma = input.frame.luma;
  d.chroma = input.frame.chroma;
  d.out = out;
  d.pitch = f.pitch;
  d.luma_max_x = f.width - 1;
  d.luma_max_y = f.height - 1;
  d.chroma_min_x = roi.x / 2;
  d.chroma_min_y = roi.y / 2;
  d.chroma_max_x = (roi.x + roi.width + 1) / 2 - 1;
  d.chroma_max_y = (roi.y + roi.height + 1) / 2 - 1;
  d.is_p016 = f.format == PixelFormat::kP016;
  const size_t row_bytes = (params.layout == TensorLayout::kNCHW ? 1 : 3) * static_cast<size_t>(params.width) *
                           TensorTypeBytes(params.type);
  d.vector_store = reinterpret_cast<uintptr_t>(out) % 16 == 0 && row_bytes % 16 == 0;
  const size_t pair_bytes = 2 * static_cast<size_t>(BytesPerSample(f.format));
  d.chroma_pairs_aligned = reinterpret_cast<uintptr_t>(input.frame.chroma) % pair_bytes == 0 &&
                           static_cast<size_t>(f.pitch) % pair_bytes == 0;
  d.rows_16b_aligned = reinterpret_cast<uintptr_t>(input.frame.luma) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(input.frame.chroma) % 16 == 0 && f.pitch % 16 == 0;

  d.clamp_x0 = static_cast<float>(roi.x);
  d.clamp_x1 = static_cast<float>(roi.x + roi.width - 1);
  d.clamp_y0 = static_cast<float>(roi.y);
  d.clamp_y1 = static_cast<float>(roi.y + roi.height - 1);
  d.content_x0 = t.content_x;
  d.content_x1 = t.content_x + t.content_width;
  d.content_y0 = t.content_y;
  d.content_y1 = t.content_y + t.content_height;
  // Shrinking by more than 2x: ceil(step / 2) samples per axis, each at most 2 source pixels apart, so
  // the bilinear footprints of the samples cover the output pixel's whole footprint.
  d.taps_x = params.antialias ? (roi.width + 2 * t.content_width - 1) / (2 * t.content_width) : 1;
  d.taps_y = params.antialias ? (roi.height + 2 * t.content_height - 1) / (2 * t.content_height) : 1;
  d.inv_taps = 1.0f / static_cast<float>(d.taps_x * d.taps_y);
  const double step_x = static_cast<double>(roi.width) / t.content_width;
  const double step_y = static_cast<double>(roi.height) / t.content_height;
  const double sub_x = step_x / d.taps_x, sub_y = step_y / d.taps_y;
  d.step_x = static_cast<float>(step_x);
  d.step_y = static_cast<float>(step_y);
  d.sub_x = static_cast<float>(sub_x);
  d.sub_y = static_cast<float>(sub_y);
  d.base_x = static_cast<float>(roi.x - t.content_x * step_x + 0.5 * sub_x - 0.5);
  d.base_y = static_cast<float>(roi.y - t.content_y * step_y + 0.5 * sub_y - 0.5);

  // Raw sample -> normalised Y' in 0..1 and U', V' in -0.5..0.5 (ITU-R BT.2100 / H.273 quantisation):
  // limited range Y = 16..235 and C = 16..240 scaled by 2^(bits-8), full range over 0..2^bits-1.
  // P016 holds 10-bit values shifted left by 6.
  const double unit = d.is_p016 ? 64.0 : 1.0;  // raw units per code value
  const double depth_scale = d.is_p016 ? 4.0 : 1.0;  // 2^(bits - 8)
  const double max_code = d.is_p016 ? 1023.0 : 255.0;
  double ky, by, kc, bc;
  if (f.color_range == ColorRange::kLimited) {
    ky = 1.0 / (219.0 * depth_scale * unit);
    by = -16.0 / 219.0;
    kc = 1.0 / (224.0 * depth_scale * unit);
    bc = -128.0 / 224.0;
  } else {
    ky = 1.0 / (max_code * unit);
    by = 0.0;
    kc = 1.0 / (max_code * unit);
    bc = -128.0 * depth_scale / max_code;
  }
  double kr, kb;
  MatrixConstants(f.color_space, &kr, &kb);
  const double kg = 1.0 - kr - kb;
  const double r_v = 2.0 * (1.0 - kr);
  const double b_u = 2.0 * (1.0 - kb);
  const double g_u = 2.0 * kb * (1.0 - kb) / kg;
  const double g_v = 2.0 * kr * (1.0 - kr) / kg;
  // Rows R, G, B as functions of (Y', U', V'), then folded with the quantisation into raw samples.
  const double rgb_from_norm[3][3] = {{1.0, 0.0, r_v}, {1.0, -g_u, -g_v}, {1.0, b_u, 0.0}};
  const int rgb_index[3] = {params.order == ChannelOrder::kRGB ? 0 : 2, 1,
                            params.order == ChannelOrder::kRGB ? 2 : 0};
  for (int c = 0; c < 3; ++c) {
    const double* m = rgb_from_norm[rgb_index[c]];
    const double coef[3] = {255.0 * m[0] * ky, 255.0 * m[1] * kc, 255.0 * m[2] * kc};
    const double offset = 255.0 * (m[0] * by + (m[1] + m[2]) * bc);
    d.coef[c][0] = static_cast<float>(coef[0]);
    d.coef[c][1] = static_cast<float>(coef[1]);
    d.coef[c][2] = static_cast<float>(coef[2]);
    d.offset[c] = static_cast<float>(offset);
    const double mul = static_cast<double>(params.scale[c]) / params.std[c];
    const double add = -static_cast<double>(params.mean[c]) / params.std[c];
    d.mul[c] = static_cast<float>(mul);
    d.add[c] = static_cast<float>(add);
    d.pad[c] = static_cast<float>(params.pad[c] * mul + add);
    // v3's constants: s = (s' - 2^23) / 2^15 for each of Y, U, V, and the result / 255.
    constexpr double kSampleScale = 1.0 / 32768.0;
    d.pair_y[c] = static_cast<float>(coef[0] * kSampleScale / 255.0);
    d.pair_u[c] = static_cast<float>(coef[1] * kSampleScale / 255.0);
    d.pair_v[c] = static_cast<float>(coef[2] * kSampleScale / 255.0);
    d.pair_offset[c] = static_cast<float>((offset - 256.0 * (coef[0] + coef[1] + coef[2])) / 255.0);
    d.pair_mul[c] = static_cast<float>(255.0 * mul);
  }
  return d;
}

Expected<std::vector<LetterboxTransform>> ValidateBatch(const PreprocessParams& params,
                                                        std::span<const PreprocessInput> inputs,
                                                        const BatchTensor& output, MemoryKind memory,
                                                        int max_batch) {
  const char* where = memory == MemoryKind::kHost ? "host" : "device";
  VS_RETURN_IF_ERROR(ValidateParams(params));
  if (output.data == nullptr || output.slots < 1) return InvalidArgument("the batch tensor has no slots");
  if (output.memory != memory) {
    return InvalidArgument(fmt::format("the batch tensor must be in {} memory for this preprocessor", where));
  }
  if (static_cast<int>(inputs.size()) > max_batch) {
    return InvalidArgument(fmt::format("{} inputs exceed the preprocessor's max_batch {}", inputs.size(),
                                       max_batch));
  }
  std::vector<LetterboxTransform> transforms;
  transforms.reserve(inputs.size());
  std::unordered_set<int> slots_used;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const PreprocessInput& in = inputs[i];
    const FrameInfo& f = in.frame.info;
    const std::string context = fmt::format("input {} (stream {}, frame {})", i, f.stream_id, f.frame_index);
    if (in.frame.memory != memory) {
      return InvalidArgument(fmt::format("{}: the frame must be in {} memory for this preprocessor", context, where));
    }
    if (in.frame.luma == nullptr || in.frame.chroma == nullptr) {
      return InvalidArgument(fmt::format("{}: frame has no planes", context));
    }
    if (f.format == PixelFormat::kP016 &&
        (reinterpret_cast<uintptr_t>(in.frame.luma) % 2 != 0 || reinterpret_cast<uintptr_t>(in.frame.chroma) % 2 != 0)) {
      return InvalidArgument(fmt::format("{}: p016 planes must be 2-byte aligned", context));
    }
    if (in.slot < 0 || in.slot >= output.slots) {
      return InvalidArgument(fmt::format("{}: slot {} is outside the tensor's {} slots", context, in.slot, output.slots));
    }
    if (!slots_used.insert(in.slot).second) {
      return InvalidArgument(fmt::format("{}: slot {} is written by two inputs", context, in.slot));
    }
    auto t = ComputeLetterboxTransform(params, f, in.roi);
    if (!t.ok()) return t.status().WithContext(context);
    transforms.push_back(*t);
  }
  return transforms;
}

}  // namespace preprocess_detail

namespace {

using preprocess_detail::AreaSampleYuv;
using preprocess_detail::ConvertChannel;

// The reference implementation: one output pixel at a time, straight from the definition in preprocess.h.
class CpuPreprocessor final : public Preprocessor {
 public:
  explicit CpuPreprocessor(const PreprocessParams& params, int max_batch) : params_(params), max_batch_(max_batch) {}

  const PreprocessParams& params() const override { return params_; }

  Expected<std::vector<LetterboxTransform>> Run(std::span<const PreprocessInput> inputs,
                                                const BatchTensor& output) override {
    VS_ASSIGN_OR_RETURN(auto transforms, preprocess_detail::ValidateBatch(params_, inputs, output,
                                                                          MemoryKind::kHost, max_batch_));
    for (size_t i = 0; i < inputs.size(); ++i) {
      void* slot = static_cast<uint8_t*>(output.data) + params_.slot_bytes() * inputs[i].slot;
      const FrameDescriptor d = preprocess_detail::MakeFrameDescriptor(params_, inputs[i], transforms[i], slot);
      if (d.is_p016) {
        Convert<uint16_t>(d);
      } else {
        Convert<uint8_t>(d);
      }
    }
    return transforms;
  }

 private:
  template <typename Sample>
  void Convert(const FrameDescriptor& d) const {
    const int w = params_.width, h = params_.height;
    const size_t plane = static_cast<size_t>(w) * h;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox) {
        float value[3];
        if (ox >= d.content_x0 && ox < d.content_x1 && oy >= d.content_y0 && oy < d.content_y1) {
          float yuv[3];
          AreaSampleYuv<Sample>(d, ox, oy, yuv);
          for (int c = 0; c < 3; ++c) value[c] = ConvertChannel(d, yuv, c);
        } else {
          for (int c = 0; c < 3; ++c) value[c] = d.pad[c];
        }
        const size_t pixel = static_cast<size_t>(oy) * w + ox;
        for (int c = 0; c < 3; ++c) {
          const size_t index = params_.layout == TensorLayout::kNCHW ? c * plane + pixel : pixel * 3 + c;
          if (params_.type == TensorType::kFloat32) {
            static_cast<float*>(d.out)[index] = value[c];
          } else {
            static_cast<uint16_t*>(d.out)[index] = FloatToHalfBits(value[c]);
          }
        }
      }
    }
  }

  PreprocessParams params_;
  int max_batch_;
};

}  // namespace

const char* CudaPreprocessVariantName(CudaPreprocessVariant variant) {
  switch (variant) {
    case CudaPreprocessVariant::kChunkTile: return "v1";
    case CudaPreprocessVariant::kStagedRows: return "v2";
    case CudaPreprocessVariant::kStagedRowsR2: return "v2-r2";
    case CudaPreprocessVariant::kStagedRowsR8: return "v2-r8";
    case CudaPreprocessVariant::kStagedRowsW4: return "v2-w4";
    case CudaPreprocessVariant::kStagedRowsC192: return "v2-c192";
    case CudaPreprocessVariant::kStagedRowsC192R3B4: return "v2-c192-r3-b4";
    case CudaPreprocessVariant::kStagedPairs: return "v3";
    case CudaPreprocessVariant::kStagedPairsC320: return "v3-c320";
    case CudaPreprocessVariant::kStagedPairsC320W6: return "v3-c320-w6";
    case CudaPreprocessVariant::kStagedPairsC320W4: return "v3-c320-w4";
    case CudaPreprocessVariant::kStagedPairsC320S3: return "v3-c320-s3";
    case CudaPreprocessVariant::kStagedPairsC320Cs: return "v3-c320-cs";
    case CudaPreprocessVariant::kStagedPairsC320G4: return "v3-c320-g4";
    case CudaPreprocessVariant::kStagedPairsC960: return "v3-c960";
    case CudaPreprocessVariant::kStagedPairsC320G4Cs: return "v3-c320-g4-cs";
    case CudaPreprocessVariant::kStagedPairsC320G4S3Cs: return "v3-c320-g4-s3-cs";
  }
  return "unknown";
}

float CudaPreprocessVariantToleranceLevels(CudaPreprocessVariant variant) {
  // Every v3 shape quantises the horizontal weights to 2^-15 (paired_rows.h); v1 and v2 keep float weights.
  return std::string_view(CudaPreprocessVariantName(variant)).starts_with("v3") ? 0.02f : 0.01f;
}

std::span<const CudaPreprocessVariant> AllCudaPreprocessVariants() {
  static constexpr CudaPreprocessVariant kAll[] = {
      CudaPreprocessVariant::kChunkTile,    CudaPreprocessVariant::kStagedRows,     CudaPreprocessVariant::kStagedRowsR2,
      CudaPreprocessVariant::kStagedRowsR8, CudaPreprocessVariant::kStagedRowsW4,   CudaPreprocessVariant::kStagedRowsC192,
      CudaPreprocessVariant::kStagedRowsC192R3B4, CudaPreprocessVariant::kStagedPairs,
      CudaPreprocessVariant::kStagedPairsC320, CudaPreprocessVariant::kStagedPairsC320W6,
      CudaPreprocessVariant::kStagedPairsC320W4, CudaPreprocessVariant::kStagedPairsC320S3,
      CudaPreprocessVariant::kStagedPairsC320Cs, CudaPreprocessVariant::kStagedPairsC320G4,
      CudaPreprocessVariant::kStagedPairsC960, CudaPreprocessVariant::kStagedPairsC320G4Cs,
      CudaPreprocessVariant::kStagedPairsC320G4S3Cs};
  return kAll;
}

Expected<std::unique_ptr<Preprocessor>> CreatePreprocessor(const PreprocessParams& params,
                                                           const PreprocessorOptions& options) {
  VS_RETURN_IF_ERROR(ValidateParams(params));
  if (options.max_batch < 1) return InvalidArgument("max_batch must be at least 1");
  if (options.device == PreprocessDevice::kCpu) {
    return std::unique_ptr<Preprocessor>(std::make_unique<CpuPreprocessor>(params, options.max_batch));
  }
#ifdef VIDSCAN_HAVE_CUDA
  return preprocess_detail::CreateCudaPreprocessor(params, options);
#else
  return MakeError(StatusCode::kUnavailable, "this vidscan build has no CUDA: use the CPU preprocessor");
#endif
}

}  // namespace vidscan
