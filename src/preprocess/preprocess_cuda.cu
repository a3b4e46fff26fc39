// The fused preprocess kernels: NV12/P016 surfaces -> batch tensor slots. Two variants compute the same
// function (PreprocessorOptions::cuda_variant): v1 below, and v2 and its tunings v2-* (preprocess_staged.cuh,
// v2 the default), which takes every frame with step <= 2 and 16-byte aligned rows and leaves the rest to a v1 launch.
//
// v1 work split: one warp makes one chunk of 256 consecutive output pixels of one row; lane l computes
// pixels l, l+32, ..., l+224, so each of its source loads is coalesced with its neighbours' (adjacent
// output pixels read adjacent source bytes). The warp stages the converted values in shared memory in
// tensor order and then writes them back with 16-byte stores of consecutive elements (8 halves or 4
// floats per lane per store), so both reads and writes are coalesced whatever the layout. blockIdx.z is
// the frame: each frame has its own descriptor of precomputed constants, so a batch mixes sources,
// sizes, formats and colour spaces freely, and the branches on them are uniform per block.
#include <cuda_fp16.h>

#include <memory>
#include <string>

#include "preprocess/cuda_buffers.h"
#include "preprocess/frame_descriptor.h"
#include "preprocess/preprocess_kernel.cuh"
#include "preprocess/preprocess_staged.cuh"

namespace vidscan::preprocess_detail {
namespace {

constexpr int kMaxGridZ = 65535;

class CudaPreprocessor final : public Preprocessor {
 public:
  CudaPreprocessor(const PreprocessParams& params, const PreprocessorOptions& options, DeviceBuffer descriptors,
                   PinnedBuffer staging, CudaEvent upload_done)
      : params_(params),
        options_(options),
        descriptors_(std::move(descriptors)),
        staging_(std::move(staging)),
        upload_done_(std::move(upload_done)) {}

  const PreprocessParams& params() const override { return params_; }

  Expected<std::vector<LetterboxTransform>> Run(std::span<const PreprocessInput> inputs,
                                                const BatchTensor& output) override {
    VS_ASSIGN_OR_RETURN(auto transforms,
                        ValidateBatch(params_, inputs, output, MemoryKind::kDevice, options_.max_batch));
    if (inputs.empty()) return transforms;
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.gpu_index));
    // The previous call's upload may still be reading the staging buffer.
    VS_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(upload_done_.get()));
    auto* staged = staging_.as<FrameDescriptor>();
    // v2: the frames the staged kernel takes first, the rest (for v1) after them; v1 takes all.
    const bool staged_variant = IsStagedVariant(options_.cuda_variant);
    int staged_count = 0;
    size_t next_v1 = inputs.size();
    for (size_t i = 0; i < inputs.size(); ++i) {
      void* slot = static_cast<uint8_t*>(output.data) + params_.slot_bytes() * inputs[i].slot;
      const FrameDescriptor d = MakeFrameDescriptor(params_, inputs[i], transforms[i], slot);
      if (staged_variant && StagedKernelTakes(d)) {
        staged[staged_count++] = d;
      } else {
        staged[--next_v1] = d;
      }
    }
    cudaStream_t stream = options_.stream;
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(descriptors_.data(), staged, inputs.size() * sizeof(FrameDescriptor),
                                            cudaMemcpyHostToDevice, stream));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(upload_done_.get(), stream));
    const int count = static_cast<int>(inputs.size());
    if (staged_variant) {
      VS_RETURN_IF_ERROR(LaunchStagedKernel(options_.cuda_variant, params_, descriptors_.as<FrameDescriptor>(), staged,
                                            staged_count, stream));
    }
    VS_RETURN_IF_ERROR(LaunchPreprocessKernel(params_, descriptors_.as<FrameDescriptor>() + staged_count,
                                              count - staged_count, stream));
    return transforms;
  }

 private:
  PreprocessParams params_;
  PreprocessorOptions options_;
  DeviceBuffer descriptors_;
  PinnedBuffer staging_;
  CudaEvent upload_done_;
};

}  // namespace

Status LaunchPreprocessKernel(const PreprocessParams& params, const FrameDescriptor* frames, int frame_count,
                              cudaStream_t stream) {
  if (frame_count < 1) return Status::Ok();
  if (frame_count > kMaxGridZ) {
    return MakeError(StatusCode::kInvalidArgument, std::to_string(frame_count) + " frames exceed one launch's " + std::to_string(kMaxGridZ));
  }
  const int chunks_per_row = (params.width + kChunkPixels - 1) / kChunkPixels;
  const long long chunks = static_cast<long long>(chunks_per_row) * params.height;
  const dim3 grid(static_cast<unsigned>((chunks + kWarpsPerBlock - 1) / kWarpsPerBlock), 1,
                  static_cast<unsigned>(frame_count));
  const dim3 block(kWarpsPerBlock * 32);
  const bool nhwc = params.layout == TensorLayout::kNHWC;
  if (params.type == TensorType::kFloat16) {
    if (nhwc) {
      PreprocessKernel<__half, true><<<grid, block, 0, stream>>>(frames, params.width, params.height, chunks_per_row);
    } else {
      PreprocessKernel<__half, false><<<grid, block, 0, stream>>>(frames, params.width, params.height, chunks_per_row);
    }
  } else {
    if (nhwc) {
      PreprocessKernel<float, true><<<grid, block, 0, stream>>>(frames, params.width, params.height, chunks_per_row);
    } else {
      PreprocessKernel<float, false><<<grid, block, 0, stream>>>(frames, params.width, params.height, chunks_per_row);
    }
  }
  return CudaStatus(cudaGetLastError(), "PreprocessKernel launch");
}

namespace {

template <typename Shape>
Status LaunchStagedShape(const PreprocessParams& params, const FrameDescriptor* frames, int sample_bytes,
                         int frame_count, cudaStream_t stream) {
  const size_t shared_bytes = StagedSharedBytes<Shape>(sample_bytes);
  const int chunks_per_row = (params.width + Shape::kColumns - 1) / Shape::kColumns;
  const long long warps = static_cast<long long>(chunks_per_row) *
                          ((params.height + Shape::kRowsPerWarp - 1) / Shape::kRowsPerWarp);
  const dim3 grid(static_cast<unsigned>((warps + Shape::kWarps - 1) / Shape::kWarps), 1,
                  static_cast<unsigned>(frame_count));
  const dim3 block(Shape::kWarps * 32);
  const bool nhwc = params.layout == TensorLayout::kNHWC;
  auto launch = [&](auto kernel) -> Status {
    kernel<<<grid, block, shared_bytes, stream>>>(frames, params.width, params.height, chunks_per_row);
    return CudaStatus(cudaGetLastError(), "PreprocessStagedKernel launch");
  };
  if (params.type == TensorType::kFloat16) {
    return nhwc ? launch(PreprocessStagedKernel<Shape, __half, true>)
                : launch(PreprocessStagedKernel<Shape, __half, false>);
  }
  return nhwc ? launch(PreprocessStagedKernel<Shape, float, true>) : launch(PreprocessStagedKernel<Shape, float, false>);
}

// Its blocks take more than the default 48 KiB of dynamic shared memory; allowed once, at creation.
template <typename Shape>
Status AllowStagedSharedMemory() {
  const int most = static_cast<int>(StagedSharedBytes<Shape>(2));
  auto allow = [&](auto kernel) {
    return CudaStatus(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, most),
                      "cudaFuncSetAttribute(PreprocessStagedKernel)");
  };
  VS_RETURN_IF_ERROR(allow(PreprocessStagedKernel<Shape, __half, false>));
  VS_RETURN_IF_ERROR(allow(PreprocessStagedKernel<Shape, __half, true>));
  VS_RETURN_IF_ERROR(allow(PreprocessStagedKernel<Shape, float, false>));
  return allow(PreprocessStagedKernel<Shape, float, true>);
}

}  // namespace

Status LaunchStagedKernel(CudaPreprocessVariant variant, const PreprocessParams& params,
                          const FrameDescriptor* frames, const FrameDescriptor* host_frames, int frame_count,
                          cudaStream_t stream) {
  if (frame_count < 1) return Status::Ok();
  if (frame_count > kMaxGridZ) {
    return MakeError(StatusCode::kInvalidArgument, std::to_string(frame_count) + " frames exceed one launch's " + std::to_string(kMaxGridZ));
  }
  int sample_bytes = 1;
  for (int i = 0; i < frame_count; ++i) sample_bytes = host_frames[i].is_p016 ? 2 : sample_bytes;
  return VisitStagedShape(
      variant,
      MakeError(StatusCode::kInvalidArgument, std::string("not a staged variant: ") + CudaPreprocessVariantName(variant)),
      [&](auto shape) {
        return LaunchStagedShape<decltype(shape)>(params, frames, sample_bytes, frame_count, stream);
      });
}

Expected<std::unique_ptr<Preprocessor>> CreateCudaPreprocessor(const PreprocessParams& params,
                                                               const PreprocessorOptions& options) {
  if (options.max_batch > kMaxGridZ) {
    return MakeError(StatusCode::kInvalidArgument, "max_batch " + std::to_string(options.max_batch) + " exceeds " + std::to_string(kMaxGridZ));
  }
  VS_RETURN_IF_ERROR(CudaDeviceAvailable(options.gpu_index));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.gpu_index));
  const size_t bytes = sizeof(FrameDescriptor) * options.max_batch;
  VS_ASSIGN_OR_RETURN(DeviceBuffer descriptors, DeviceBuffer::Allocate(bytes));
  VS_ASSIGN_OR_RETURN(PinnedBuffer staging, PinnedBuffer::Allocate(bytes));
  VS_ASSIGN_OR_RETURN(CudaEvent upload_done, CudaEvent::Create(cudaEventDisableTiming));
  VS_RETURN_IF_ERROR(VisitStagedShape(options.cuda_variant, Status::Ok(),
                                      [](auto shape) { return AllowStagedSharedMemory<decltype(shape)>(); }));
  return std::unique_ptr<Preprocessor>(std::make_unique<CudaPreprocessor>(
      params, options, std::move(descriptors), std::move(staging), std::move(upload_done)));
}

}  // namespace vidscan::preprocess_detail
