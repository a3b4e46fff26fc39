// Fused kernel v3's launch (preprocess_paired.cuh; the CUDA Preprocessor in preprocess_cuda.cu decides
// which frames it takes). A file of its own so its instantiations (one per shape x 8) compile beside v1/v2's.
#include <algorithm>
#include <string>

#include "preprocess/cuda_buffers.h"
#include "preprocess/preprocess_paired.cuh"

namespace vidscan::preprocess_detail {
namespace {

// f(kernel) for the instantiation of the shape, output type, layout and channel order.
template <typename Shape, typename F>
Status VisitPairedKernel(const PreprocessParams& params, F&& f) {
  const bool nhwc = params.layout == TensorLayout::kNHWC, bgr = params.order == ChannelOrder::kBGR;
  if (params.type == TensorType::kFloat16) {
    if (nhwc) return bgr ? f(PreprocessPairedKernel<Shape, __half, true, true>) : f(PreprocessPairedKernel<Shape, __half, true, false>);
    return bgr ? f(PreprocessPairedKernel<Shape, __half, false, true>) : f(PreprocessPairedKernel<Shape, __half, false, false>);
  }
  if (nhwc) return bgr ? f(PreprocessPairedKernel<Shape, float, true, true>) : f(PreprocessPairedKernel<Shape, float, true, false>);
  return bgr ? f(PreprocessPairedKernel<Shape, float, false, true>) : f(PreprocessPairedKernel<Shape, float, false, false>);
}

Status NotPaired(CudaPreprocessVariant variant) {
  return MakeError(StatusCode::kInvalidArgument, std::string("not a v3 variant: ") + CudaPreprocessVariantName(variant));
}

template <typename Shape>
Status LaunchPairedShape(const PreprocessParams& params, const FrameDescriptor* frames, int frame_count,
                         int max_blocks, cudaStream_t stream) {
  const int ranges_per_row = (params.width + Shape::kColumns - 1) / Shape::kColumns;
  const long long units = static_cast<long long>(frame_count) * ranges_per_row * params.height;
  // Small launches: fewer blocks, so that each builds its table for at least kMinRowsPerWarp rows per warp.
  // Persistent shapes (kGridWaves 0) at most the blocks that fit at once; the others up to kGridWaves times
  // that, handed out by the hardware as blocks finish.
  constexpr int kRowsPerBlock = Shape::kWarps * Shape::kMinRowsPerWarp;
  const long long wanted = (units + kRowsPerBlock - 1) / kRowsPerBlock;
  const long long most = static_cast<long long>(std::max(max_blocks, 1)) * std::max(Shape::kGridWaves, 1);
  const int blocks = static_cast<int>(std::max<long long>(1, std::min<long long>(wanted, most)));
  return VisitPairedKernel<Shape>(params, [&](auto kernel) {
    kernel<<<blocks, Shape::kWarps * 32, PairedSharedBytes<Shape>(), stream>>>(frames, params.width, params.height,
                                                                              ranges_per_row, units);
    return CudaStatus(cudaGetLastError(), "PreprocessPairedKernel launch");
  });
}

template <typename Shape>
Expected<int> PreparePairedShape(const PreprocessParams& params) {
  constexpr int kBytes = static_cast<int>(PairedSharedBytes<Shape>());
  int device = 0, sms = 0, per_sm = 0;
  VS_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  VS_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  VS_RETURN_IF_ERROR(VisitPairedKernel<Shape>(params, [&](auto kernel) -> Status {
    VS_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes));
    return CudaStatus(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, Shape::kWarps * 32, kBytes),
                      "cudaOccupancyMaxActiveBlocksPerMultiprocessor(PreprocessPairedKernel)");
  }));
  if (per_sm < 1) {
    return MakeError(StatusCode::kUnavailable,
                     "PreprocessPairedKernel: no block fits an SM (" + std::to_string(kBytes) + " bytes of shared memory)");
  }
  return sms * per_sm;
}

}  // namespace

Status LaunchPairedKernel(CudaPreprocessVariant variant, const PreprocessParams& params, const FrameDescriptor* frames,
                          int frame_count, int max_blocks, cudaStream_t stream) {
  if (frame_count < 1) return Status::Ok();
  return VisitPairedShape(variant, NotPaired(variant), [&](auto shape) {
    return LaunchPairedShape<decltype(shape)>(params, frames, frame_count, max_blocks, stream);
  });
}

Expected<int> PreparePairedKernel(CudaPreprocessVariant variant, const PreprocessParams& params) {
  return VisitPairedShape(variant, Expected<int>(NotPaired(variant)),
                          [&](auto shape) { return PreparePairedShape<decltype(shape)>(params); });
}

}  // namespace vidscan::preprocess_detail
