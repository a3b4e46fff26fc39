// Three simple one-thread-per-pixel kernels; see unfused_cuda.h. They reuse the fused path's
// per-frame descriptor for the colour matrix and normalisation, so only the structure differs.
#include "preprocess/unfused_cuda.h"

#include <cuda_fp16.h>

#include <string>

#include "preprocess/cuda_buffers.h"
#include "preprocess/frame_descriptor.h"

namespace vidscan {
namespace {

using preprocess_detail::ChromaTapX;
using preprocess_detail::ChromaTapY;
using preprocess_detail::ConvertChannel;
using preprocess_detail::FrameDescriptor;
using preprocess_detail::LumaTapX;
using preprocess_detail::LumaTapY;
using preprocess_detail::SampleYuv;

// Pass 1: each frame's descriptor describes an identity resize, so sample positions are whole pixels.
__global__ void Nv12ToRgbKernel(const FrameDescriptor* __restrict__ frames, int width, int height,
                                uint8_t* __restrict__ rgb) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= height) return;
  const FrameDescriptor& d = frames[blockIdx.z];
  const float sx = static_cast<float>(x), sy = static_cast<float>(y);
  float yuv[3];
  SampleYuv<uint8_t>(d, LumaTapX(d, sx), LumaTapY(d, sy), ChromaTapX(d, sx), ChromaTapY(d, sy), yuv);
  uint8_t* out = rgb + (static_cast<size_t>(blockIdx.z) * height * width + static_cast<size_t>(y) * width + x) * 3;
  for (int c = 0; c < 3; ++c) {
    float v = d.coef[c][0] * yuv[0] + d.coef[c][1] * yuv[1] + d.coef[c][2] * yuv[2] + d.offset[c];
    out[c] = static_cast<uint8_t>(__float2int_rn(fminf(fmaxf(v, 0.0f), 255.0f)));
  }
}

// Pass 2: bilinear resize with pixel centres aligned (half-pixel convention) and edges clamped.
__global__ void ResizeRgbKernel(const uint8_t* __restrict__ src, int src_width, int src_height,
                                uint8_t* __restrict__ dst, int dst_width, int dst_height, float step_x,
                                float step_y) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst_width || y >= dst_height) return;
  const float sx = fminf(fmaxf((x + 0.5f) * step_x - 0.5f, 0.0f), static_cast<float>(src_width - 1));
  const float sy = fminf(fmaxf((y + 0.5f) * step_y - 0.5f, 0.0f), static_cast<float>(src_height - 1));
  const int x0 = static_cast<int>(sx), y0 = static_cast<int>(sy);
  const int x1 = min(x0 + 1, src_width - 1), y1 = min(y0 + 1, src_height - 1);
  const float fx = sx - x0, fy = sy - y0;
  const uint8_t* frame = src + static_cast<size_t>(blockIdx.z) * src_height * src_width * 3;
  const uint8_t* r0 = frame + static_cast<size_t>(y0) * src_width * 3;
  const uint8_t* r1 = frame + static_cast<size_t>(y1) * src_width * 3;
  uint8_t* out = dst + (static_cast<size_t>(blockIdx.z) * dst_height * dst_width + static_cast<size_t>(y) * dst_width + x) * 3;
  for (int c = 0; c < 3; ++c) {
    const float top = r0[x0 * 3 + c] + (r0[x1 * 3 + c] - r0[x0 * 3 + c]) * fx;
    const float bottom = r1[x0 * 3 + c] + (r1[x1 * 3 + c] - r1[x0 * 3 + c]) * fx;
    out[c] = static_cast<uint8_t>(__float2int_rn(top + (bottom - top) * fy));
  }
}

// Pass 3: normalise, cast, lay out. One thread per pixel.
template <typename Out>
__global__ void NormaliseKernel(const uint8_t* __restrict__ rgb, const FrameDescriptor* __restrict__ frames,
                                int width, int height, bool nhwc) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= height) return;
  const FrameDescriptor& d = frames[blockIdx.z];
  const size_t pixel = static_cast<size_t>(y) * width + x;
  const size_t plane = static_cast<size_t>(width) * height;
  const uint8_t* in = rgb + (static_cast<size_t>(blockIdx.z) * plane + pixel) * 3;
  Out* out = static_cast<Out*>(d.out);
  for (int c = 0; c < 3; ++c) {
    const float v = in[c] * d.mul[c] + d.add[c];
    out[nhwc ? pixel * 3 + c : c * plane + pixel] = static_cast<Out>(v);
  }
}

class UnfusedPreprocessorImpl final : public UnfusedPreprocessor {
 public:
  UnfusedPreprocessorImpl(const PreprocessParams& params, int width, int height, int max_batch, cudaStream_t stream,
                          DeviceBuffer convert_frames, DeviceBuffer normalise_frames, DeviceBuffer rgb_full,
                          DeviceBuffer rgb_small, PinnedBuffer staging, CudaEvent upload_done)
      : params_(params),
        width_(width),
        height_(height),
        max_batch_(max_batch),
        stream_(stream),
        convert_frames_(std::move(convert_frames)),
        normalise_frames_(std::move(normalise_frames)),
        rgb_full_(std::move(rgb_full)),
        rgb_small_(std::move(rgb_small)),
        staging_(std::move(staging)),
        upload_done_(std::move(upload_done)) {}

  size_t BytesMovedPerFrame() const override {
    const size_t nv12 = static_cast<size_t>(width_) * height_ * 3 / 2;
    const size_t full = static_cast<size_t>(width_) * height_ * 3;
    const size_t small = static_cast<size_t>(params_.width) * params_.height * 3;
    return (nv12 + full) + (full + small) + (small + params_.slot_bytes());
  }

  Status Run(std::span<const PreprocessInput> inputs, const BatchTensor& output) override {
    VS_ASSIGN_OR_RETURN(auto transforms, preprocess_detail::ValidateBatch(params_, inputs, output,
                                                                          MemoryKind::kDevice, max_batch_));
    const int n = static_cast<int>(inputs.size());
    if (n == 0) return Status::Ok();
    PreprocessParams identity = params_;  // pass 1: same colour handling, no resize, no normalisation
    identity.width = width_;
    identity.height = height_;
    identity.resize = ResizeMode::kStretch;
    identity.scale = {1, 1, 1};
    identity.mean = {0, 0, 0};
    identity.std = {1, 1, 1};
    VS_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(upload_done_.get()));
    auto* staged = staging_.as<FrameDescriptor>();
    for (int i = 0; i < n; ++i) {
      const FrameInfo& f = inputs[i].frame.info;
      if (f.format != PixelFormat::kNV12 || f.width != width_ || f.height != height_ || inputs[i].roi.width != 0 ||
          params_.resize != ResizeMode::kStretch || transforms[i].scale_x < 0.5f || transforms[i].scale_y < 0.5f) {
        return MakeError(StatusCode::kUnsupported,
                         "the unfused baseline takes whole NV12 frames of its one size, stretched by at most 2x down");
      }
      auto t = ComputeLetterboxTransform(identity, f, Roi{});
      if (!t.ok()) return t.status();
      staged[i] = preprocess_detail::MakeFrameDescriptor(identity, inputs[i], *t, nullptr);
      void* slot = static_cast<uint8_t*>(output.data) + params_.slot_bytes() * inputs[i].slot;
      staged[max_batch_ + i] = preprocess_detail::MakeFrameDescriptor(params_, inputs[i], transforms[i], slot);
    }
    const size_t bytes = sizeof(FrameDescriptor) * n;
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(convert_frames_.data(), staged, bytes, cudaMemcpyHostToDevice, stream_));
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(normalise_frames_.data(), staged + max_batch_, bytes,
                                            cudaMemcpyHostToDevice, stream_));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(upload_done_.get(), stream_));

    const dim3 block(32, 8);
    const dim3 full_grid((width_ + 31) / 32, (height_ + 7) / 8, n);
    const dim3 small_grid((params_.width + 31) / 32, (params_.height + 7) / 8, n);
    Nv12ToRgbKernel<<<full_grid, block, 0, stream_>>>(convert_frames_.as<FrameDescriptor>(), width_, height_,
                                                      rgb_full_.as<uint8_t>());
    VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    ResizeRgbKernel<<<small_grid, block, 0, stream_>>>(
        rgb_full_.as<uint8_t>(), width_, height_, rgb_small_.as<uint8_t>(), params_.width, params_.height,
        static_cast<float>(width_) / params_.width, static_cast<float>(height_) / params_.height);
    VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    const bool nhwc = params_.layout == TensorLayout::kNHWC;
    if (params_.type == TensorType::kFloat16) {
      NormaliseKernel<__half><<<small_grid, block, 0, stream_>>>(rgb_small_.as<uint8_t>(),
                                                                 normalise_frames_.as<FrameDescriptor>(),
                                                                 params_.width, params_.height, nhwc);
    } else {
      NormaliseKernel<float><<<small_grid, block, 0, stream_>>>(rgb_small_.as<uint8_t>(),
                                                                normalise_frames_.as<FrameDescriptor>(),
                                                                params_.width, params_.height, nhwc);
    }
    VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return Status::Ok();
  }

 private:
  PreprocessParams params_;
  int width_, height_, max_batch_;
  cudaStream_t stream_;
  DeviceBuffer convert_frames_, normalise_frames_, rgb_full_, rgb_small_;
  PinnedBuffer staging_;
  CudaEvent upload_done_;
};

}  // namespace

Expected<std::unique_ptr<UnfusedPreprocessor>> UnfusedPreprocessor::Create(const PreprocessParams& params,
                                                                           int frame_width, int frame_height,
                                                                           int max_batch, CUstream_st* stream) {
  VS_RETURN_IF_ERROR(ValidateParams(params));
  if (frame_width < 1 || frame_height < 1 || max_batch < 1 || max_batch > 65535) {
    return MakeError(StatusCode::kInvalidArgument, "unfused preprocessor: bad frame size or max_batch");
  }
  const size_t n = static_cast<size_t>(max_batch);
  VS_ASSIGN_OR_RETURN(DeviceBuffer convert_frames, DeviceBuffer::Allocate(sizeof(FrameDescriptor) * n));
  VS_ASSIGN_OR_RETURN(DeviceBuffer normalise_frames, DeviceBuffer::Allocate(sizeof(FrameDescriptor) * n));
  VS_ASSIGN_OR_RETURN(DeviceBuffer rgb_full,
                      DeviceBuffer::Allocate(n * static_cast<size_t>(frame_width) * frame_height * 3));
  VS_ASSIGN_OR_RETURN(DeviceBuffer rgb_small,
                      DeviceBuffer::Allocate(n * static_cast<size_t>(params.width) * params.height * 3));
  VS_ASSIGN_OR_RETURN(PinnedBuffer staging, PinnedBuffer::Allocate(2 * sizeof(FrameDescriptor) * n));
  VS_ASSIGN_OR_RETURN(CudaEvent upload_done, CudaEvent::Create(cudaEventDisableTiming));
  return std::unique_ptr<UnfusedPreprocessor>(std::make_unique<UnfusedPreprocessorImpl>(
      params, frame_width, frame_height, max_batch, stream, std::move(convert_frames), std::move(normalise_frames),
      std::move(rgb_full), std::move(rgb_small), std::move(staging), std::move(upload_done)));
}

}  // namespace vidscan
