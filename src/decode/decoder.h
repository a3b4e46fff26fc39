// One interface for the NVDEC (GPU) and libavcodec (CPU) decoders: compressed packets in, sampled frames
// out as NV12/P016 in pooled surfaces (device memory for NVDEC, host memory for the CPU decoder).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/frame.h"
#include "core/slot_pool.h"
#include "core/status.h"
#include "media/demuxer.h"
#include "media/sampling.h"
#include "media/stream_info.h"

namespace vidscan {

enum class DecoderDevice : uint8_t { kCpu, kGpu };
const char* DecoderDeviceName(DecoderDevice d);

struct DecoderOptions {
  DecoderDevice device = DecoderDevice::kCpu;
  int gpu_index = 0;
  // Output surfaces per decoder: how many decoded frames a consumer may hold before the decoder waits.
  int surface_pool_size = 4;
  // NVDEC only: the caller's frame memory in place of the decoder's surfaces (the multi-process mode's
  // shared device slots, so a picture is copied once, from NVDEC's output straight into the slot). Called
  // per delivered picture with the bytes it needs (pitch x (height + chroma rows), pitch a multiple of 256);
  // returns device memory of at least that size (or an error, which ends the file). The picture is written
  // and the copy complete before the sink gets the frame; the frame then holds no lease: the memory is the
  // caller's. Unset: the decoder's own pool of surface_pool_size surfaces.
  std::function<Expected<uint8_t*>(size_t bytes)> acquire_output;
  int cpu_threads = 0;  // libavcodec threads per CPU decoder; 0 = one per core
  SamplingPolicy sampling;
  int stream_id = 0;
  // DecodeFile calls this once the container is open, before the first frame (the run pipeline needs the
  // frame rate to size its tracker); optional.
  std::function<void(const VideoStreamInfo&)> on_open;
};

// A sampled frame; its surface goes back to the decoder's pool when this is destroyed.
struct DecodedFrame {
  FrameView view;
  SlotLease lease;
};

// Called in display order for every frame the sampler keeps. An error stops decoding of this file.
using FrameSink = std::function<Status(DecodedFrame&&)>;

struct DecodeCounters {
  int64_t packets = 0;          // packets fed to the decoder
  int64_t frames_decoded = 0;   // pictures the decoder produced (sampled or not)
  int64_t frames_delivered = 0; // frames handed to the sink
  int64_t decode_errors = 0;    // packets or pictures the decoder reported broken
  int64_t frames_corrupt = 0;   // pictures decoded with errors and dropped
  int64_t frames_skipped = 0;   // pictures dropped after a damaged one, until the next intra picture
  int64_t packets_skipped = 0;  // packets dropped while waiting for the next keyframe after an error
};

class VideoDecoder {
 public:
  // Fails with kUnsupported for codecs, bit depths or chroma formats the device cannot decode, and with
  // kUnavailable when the GPU path is asked for and no NVIDIA driver/GPU is present.
  static Expected<std::unique_ptr<VideoDecoder>> Create(const VideoStreamInfo& info,
                                                        const AVCodecParameters* codec_parameters,
                                                        const DecoderOptions& options, FrameSink sink);
  virtual ~VideoDecoder() = default;

  // kCorruptData: this packet could not be decoded (the caller resynchronises at the next keyframe);
  // any other error is fatal for the file.
  virtual Status Decode(const EncodedPacket& packet) = 0;
  // End of stream: delivers the frames still held for reordering.
  virtual Status Flush() = 0;
  // Frames lost to a skip after an error: keeps the display index of later frames right.
  virtual void NoteSkippedPacket() = 0;
  virtual const DecodeCounters& counters() const = 0;
  virtual std::string description() const = 0;  // "nvdec (GPU 0)", "libavcodec h264 (8 threads)"
};

// What happened to one file.
struct FileDecodeReport {
  std::string path;
  Status status;                 // ok, or the one error that names the file and the reason
  VideoStreamInfo info;
  DecodeCounters counters;
  double decoded_video_seconds = 0;  // span of video time the decoder covered
  double wall_seconds = 0;
};

// Demuxes and decodes a whole file, resynchronising at the next keyframe after corruption. Never throws;
// every failure becomes report.status.
FileDecodeReport DecodeFile(const std::string& path, const DecoderOptions& options, const FrameSink& sink);

}  // namespace vidscan
