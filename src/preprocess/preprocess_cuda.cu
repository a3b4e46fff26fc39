// The fused preprocess kernels: NV12/P016 surfaces -> batch tensor slots. The variants compute the same
// function (PreprocessorOptions::cuda_variant): v1 below; v2 and its tunings v2-* (preprocess_staged.cuh,
// v2-w4 the default), which take every frame with step <= 2 and 16-byte aligned rows and leave the rest to a
// v1 launch; v3 (preprocess_paired.cuh), which takes the NV12 frames it specialises and leaves the rest to
// v2-w4 (and so to v1).
//
// v1 work split: one warp makes one chunk of 256 consecutive output pixels of one row; lane l computes
// pixels l, l+32, ..., l+224, so each of its source loads is coalesced with its neighbours' (adjacent
// output pixels read adjacent source bytes). The warp stages the converted values in shared memory in
// tensor order and then writes them back with 16-byte stores of consecutive elements (8 halves or 4
// floats per lane per store), so both reads and writes are coalesced whatever the layout. blockIdx.z is
// the frame: each frame has its own descriptor of precomputed constants, so a batch mixes sources,
// sizes, formats and colour spaces freely, and the branches on them are uniform per block.
#include <cuda_fp16.h>

#include <algorithm>
#include <memory>
#include <string>

#include "preprocess/cuda_buffers.h"
#include "preprocess/frame_descriptor.h"
#include "preprocess/preprocess_kernel.cuh"
#include "preprocess/preprocess_paired.cuh"
#include "preprocess/preprocess_staged.cuh"

namespace vidscan::preprocess_detail {
namespace {

constexpr int kMaxGridZ = 65535;

class CudaPreprocessor final : public Preprocessor {
 public:
  CudaPreprocessor(const PreprocessParams& params, const PreprocessorOptions& options, DeviceBuffer descriptors,
                   PinnedBuffer staging, CudaEvent upload_done, int paired_blocks)
      : params_(params),
        options_(options),
        descriptors_(std::move(descriptors)),
        staging_(std::move(staging)),
        upload_done_(std::move(upload_done)),
        paired_blocks_(paired_blocks) {}

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
    // The descriptors in launch order: v3's frames (variant v3 only), then the staged kernel's (v2-*, or
    // v3's fallback v2-w4), then v1's.
    const bool paired_variant = IsPairedVariant(options_.cuda_variant);
    const CudaPreprocessVariant staged_variant = paired_variant ? kPairedFallbackVariant : options_.cuda_variant;
    const bool staged_kernel = IsStagedVariant(staged_variant);
    const int count = static_cast<int>(inputs.size());
    int paired_count = 0;
    int rest_begin = count;
    for (int i = 0; i < count; ++i) {
      void* slot = static_cast<uint8_t*>(output.data) + params_.slot_bytes() * inputs[i].slot;
      const FrameDescriptor d = MakeFrameDescriptor(params_, inputs[i], transforms[i], slot);
      if (paired_variant && PairedKernelTakes(d, params_)) {
        staged[paired_count++] = d;
      } else {
        staged[--rest_begin] = d;
      }
    }
    int staged_count = 0;
    if (staged_kernel) {
      staged_count = static_cast<int>(std::stable_partition(staged + paired_count, staged + count, StagedKernelTakes) -
                                      (staged + paired_count));
    }
    cudaStream_t stream = options_.stream;
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(descriptors_.data(), staged, inputs.size() * sizeof(FrameDescriptor),
                                            cudaMemcpyHostToDevice, stream));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(upload_done_.get(), stream));
    const FrameDescriptor* device = descriptors_.as<FrameDescriptor>();
    if (paired_variant) {
      VS_RETURN_IF_ERROR(LaunchPairedKernel(options_.cuda_variant, params_, device, paired_count, paired_blocks_, stream));
    }
    if (staged_kernel) {
      VS_RETURN_IF_ERROR(LaunchStagedKernel(staged_variant, params_, device + paired_count, staged + paired_count,
                                            staged_count, stream));
    }
    const int v1_begin = paired_count + staged_count;
    VS_RETURN_IF_ERROR(LaunchPreprocessKernel(params_, device + v1_begin, count - v1_begin, stream));
    return transforms;
  }

 private:
  PreprocessParams params_;
  PreprocessorOptions options_;
  DeviceBuffer descriptors_;
  PinnedBuffer staging_;
  CudaEvent upload_done_;
  int paired_blocks_;  // v3's grid: the blocks that fit on the GPU at once
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
  const bool paired = IsPairedVariant(options.cuda_variant);
  int paired_blocks = 0;
  if (paired) {
    VS_ASSIGN_OR_RETURN(paired_blocks, PreparePairedKernel(options.cuda_variant, params));
  }
  VS_RETURN_IF_ERROR(VisitStagedShape(paired ? kPairedFallbackVariant : options.cuda_variant, Status::Ok(),
                                      [](auto shape) { return AllowStagedSharedMemory<decltype(shape)>(); }));
  return std::unique_ptr<Preprocessor>(std::make_unique<CudaPreprocessor>(
      params, options, std::move(descriptors), std::move(staging), std::move(upload_done), paired_blocks));
}

}  // namespace vidscan::preprocess_detail
