// The preprocess stage: decoded NV12/P016 frames in, one slot each of a batch tensor out — colour
// conversion, crop, resize (stretch or letterbox), channel order, scale/mean/std and the cast, in one pass.
// The CPU and CUDA implementations compute the same function (docs/preprocess.md states it exactly):
//
//   1. Output pixel (ox, oy) inside the content rectangle maps to the source position (pixel-centre
//      coordinates) sx = roi.x + (ox + 0.5 - content_x) * roi.width / content_width - 0.5 (same for y).
//   2. Shrinking by more than 2x along an axis (step = roi.width / content_width > 2), the output pixel's
//      footprint is split into n = ceil(step / 2) equal parts and one sample is taken at each part's centre;
//      the samples are averaged (n = 1 otherwise). Each sample position is clamped to the ROI's border
//      pixel centres, so the crop behaves as if it were the whole picture.
//   3. A sample is Y interpolated bilinearly in the luma plane and U, V interpolated bilinearly in the
//      chroma plane at (sx / 2, sy / 2 - 0.25): 4:2:0 chroma sited as in MPEG-2/H.264 (co-sited with even
//      luma columns, centred between luma rows), clamped to the chroma samples that cover the ROI.
//   4. The averaged Y, U, V become R, G, B (0..255) with the frame's matrix and range, clamped to 0..255.
//   5. out[c] = (value[c] * scale[c] - mean[c]) / std[c] for output channel c (after RGB/BGR ordering).
//   Pixels outside the content rectangle (letterbox) are pad[c], normalised the same way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/frame.h"
#include "core/status.h"
#include "preprocess/letterbox.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace vidscan {

enum class TensorLayout : uint8_t { kNCHW, kNHWC };
enum class TensorType : uint8_t { kFloat16, kFloat32 };
enum class ChannelOrder : uint8_t { kRGB, kBGR };
enum class ResizeMode : uint8_t { kStretch, kLetterbox };
enum class LetterboxPlacement : uint8_t { kCentre, kTopLeft };

inline size_t TensorTypeBytes(TensorType t) { return t == TensorType::kFloat16 ? 2 : 4; }

// What the network wants; the same for every frame of a batch.
struct PreprocessParams {
  int width = 0;   // network input
  int height = 0;
  TensorLayout layout = TensorLayout::kNCHW;
  TensorType type = TensorType::kFloat16;
  ChannelOrder order = ChannelOrder::kRGB;
  // Per output channel (index 0 is the first channel of the tensor, i.e. B for kBGR); values in 0..255.
  std::array<float, 3> scale{1.0f, 1.0f, 1.0f};
  std::array<float, 3> mean{0.0f, 0.0f, 0.0f};
  std::array<float, 3> std{1.0f, 1.0f, 1.0f};
  ResizeMode resize = ResizeMode::kStretch;
  LetterboxPlacement placement = LetterboxPlacement::kCentre;
  std::array<float, 3> pad{114.0f, 114.0f, 114.0f};  // per output channel, 0..255 units, then normalised
  // Shrinking by more than 2x averages several bilinear taps per output pixel, so small objects do not
  // alias away. false = one bilinear tap at the pixel centre (OpenCV's INTER_LINEAR): what models trained
  // on cv2.resize inputs (YOLOX, YOLOv5/v8) saw, and so what reproduces their scores.
  bool antialias = true;

  size_t slot_elements() const { return static_cast<size_t>(width) * height * 3; }
  size_t slot_bytes() const { return slot_elements() * TensorTypeBytes(type); }
};

// A crop of the source in luma pixels; width == height == 0 means the whole frame.
struct Roi {
  int x = 0, y = 0, width = 0, height = 0;
};

struct PreprocessInput {
  FrameView frame;
  Roi roi;
  int slot = 0;  // which slot of the batch tensor receives this frame
};

// The batch tensor: `slots` slots of params.slot_bytes() each, back to back.
struct BatchTensor {
  void* data = nullptr;
  int slots = 0;
  MemoryKind memory = MemoryKind::kHost;
};

Status ValidateParams(const PreprocessParams& params);
// Checks one input (frame geometry, ROI inside the frame) and says where it lands in the network input.
Expected<LetterboxTransform> ComputeLetterboxTransform(const PreprocessParams& params, const FrameInfo& frame,
                                                       const Roi& roi);

enum class PreprocessDevice : uint8_t { kCpu, kCuda };

class Preprocessor {
 public:
  virtual ~Preprocessor() = default;
  // Writes every input into its slot and returns each input's transform (in input order). The CUDA
  // implementation only enqueues the work on its stream; the tensor is ready when the stream gets there.
  // Frames and tensor must live in the memory of the device (host for kCpu, device for kCuda).
  virtual Expected<std::vector<LetterboxTransform>> Run(std::span<const PreprocessInput> inputs,
                                                        const BatchTensor& output) = 0;
  virtual const PreprocessParams& params() const = 0;
};

// Which CUDA kernel does the work (all compute the same function: v1 and v2 bit for bit, v3 within a stated
// tolerance; docs/preprocess.md).
//   kChunkTile (v1): a warp per 256 output pixels of a row, source read straight from global memory,
//     output staged in a shared-memory tile for 16-byte stores.
//   kStagedRows (v2): a warp per 256 output pixels of 4 successive rows; for each row it first copies
//     the source bytes the row needs (2 luma + 2 chroma rows, 16-byte cp.async) into shared memory, then
//     samples from there. Frames it cannot take (area path, planes or pitch not 16-byte aligned) go to v1
//     in a second launch.
//   kStagedRows* (v2-*): the same kernel with other compile-time tunings (columns per warp, rows per
//     warp, warps per block, blocks per SM), benchmarked side by side (docs/preprocess.md).
//   kStagedPairs (v3): staged rows as v2, but a lane makes two adjacent columns with integer (DP2A)
//     horizontal taps, FMA-contracted colour and paired stores: about a third of v2's instructions per
//     pixel. Not bit-exact: within 0.02 levels of the reference (FP16 adds its rounding). It takes NV12
//     frames with step <= 2, 16-byte aligned rows and an even network width; the others go to v2-w4
//     (and from there to v1). 256-column strips.
//   kStagedPairsC320 (v3-c320): v3 with 320-column strips (960 = 3 x 320: no partial strip for the
//     benchmark's and DetectNet's width; more bytes in flight per warp, more shared memory).
enum class CudaPreprocessVariant : uint8_t {
  kChunkTile,
  kStagedRows,
  kStagedRowsR2,
  kStagedRowsR8,
  kStagedRowsW4,
  kStagedRowsC192,
  kStagedRowsC192R3B4,
  kStagedPairs,
  kStagedPairsC320,
  kStagedPairsC320W6,  // v3-c320 in blocks of 6 warps (4 per SM) and of 4 warps (6 per SM): same
  kStagedPairsC320W4,  // occupancy, finer work split
  // v3-c320 tunings for the last few per cent of issue 3 (paired_rows.h, docs/preprocess.md):
  kStagedPairsC320S3,    // 3 stage buffers (2 rows in flight per warp), 5 warps x 4 blocks per SM
  kStagedPairsC320Cs,    // evict-first L2 policy for the luma copies, streaming (st.global.cs) tensor stores
  kStagedPairsC320G4,    // non-persistent: up to 4 waves of blocks instead of one static split
  kStagedPairsC960,      // one 960-column strip: a warp copies whole source rows (DRAM locality), 10 warps per SM
  kStagedPairsC320G4Cs,    // g4 + cs
  kStagedPairsC320G4S3Cs,  // g4 + s3 + cs
};
// "v1", "v2", "v2-r2", "v2-r8", "v2-w4", "v2-c192", "v2-c192-r3-b4", "v3", "v3-c320", "v3-c320-w6", "v3-c320-w4",
// "v3-c320-s3", "v3-c320-cs", "v3-c320-g4", "v3-c960", "v3-c320-g4-cs", "v3-c320-g4-s3-cs".
const char* CudaPreprocessVariantName(CudaPreprocessVariant variant);
// The largest difference from the CPU reference a variant may have, in 8-bit levels before normalisation
// (times |scale / std| after it), FP32 output; FP16 output adds its own rounding. v1 and v2 compute the
// reference bit for bit up to FMA contraction in the colour matrix (0.01); every v3 shape quantises the
// horizontal weights to 2^-15 (0.02; docs/preprocess.md, "Kernel v3").
float CudaPreprocessVariantToleranceLevels(CudaPreprocessVariant variant);
// Every variant, v1 first (for benchmarks and tests).
std::span<const CudaPreprocessVariant> AllCudaPreprocessVariants();
// The production default: the variant CreatePreprocessor uses unless told otherwise. v3-c320-g4 on an H200
// (2026-11-30, `vidscan bench preprocess --rounds 3`, two processes): 66.8 / 67.6 us per batch of 32 1080p
// frames to 960x544 FP16 NCHW, 74.4 % / 73.4 % of copy; v2-w4, the default before, 123.4 us (40.3 %).
// Frames v3 does not take (P016, shrink > 2x, ...) go to v2-w4 in the same call.
inline constexpr CudaPreprocessVariant kDefaultCudaPreprocessVariant = CudaPreprocessVariant::kStagedPairsC320G4;

struct PreprocessorOptions {
  PreprocessDevice device = PreprocessDevice::kCpu;
  int max_batch = 64;                 // inputs per Run (CUDA: sizes the descriptor buffers once)
  int gpu_index = 0;
  CUstream_st* stream = nullptr;      // CUDA stream for all work; nullptr = the legacy default stream
  CudaPreprocessVariant cuda_variant = kDefaultCudaPreprocessVariant;  // kCuda only
};

// kUnavailable when CUDA is asked for and this build or machine has none.
Expected<std::unique_ptr<Preprocessor>> CreatePreprocessor(const PreprocessParams& params,
                                                           const PreprocessorOptions& options);

}  // namespace vidscan
