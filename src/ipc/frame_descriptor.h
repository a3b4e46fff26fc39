// What crosses from a decode worker to an inference worker per frame: a 256-byte descriptor, never the
// pixels. The pixels stay in the producer's slot pool (host shared memory here, a device pool exported
// with CUDA IPC on the GPU path); the descriptor says which slot, how the frame is laid out in it, and
// carries the CUDA IPC event the consumer waits on before reading the slot.
//
// A video's descriptors travel in order on one channel: kVideoBegin, its kFrame descriptors (with
// kVideoData chunks between them where the producer sends data about the video), then kVideoEnd (with the
// producer's status) or kVideoAbandoned (the supervisor took the video away).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/frame.h"
#include "core/status.h"

namespace vidscan::ipc {

enum class DescriptorKind : uint8_t {
  kVideoBegin = 1,      // a new attempt at a video starts on this channel
  kFrame = 2,           // one frame in `slot`
  kVideoEnd = 3,        // the producer is done with the video; status_code/message say how it went
  kVideoAbandoned = 4,  // the producer stopped the video on the supervisor's order; drop what you have
  kVideoData = 5,       // one chunk of a data message about the video (FrameWriter::SendVideoData)
};

// sizeof(cudaIpcEventHandle_t): the module holds it as opaque bytes so that no CUDA header is needed here.
inline constexpr size_t kCudaIpcEventHandleBytes = 64;
inline constexpr size_t kDescriptorMessageBytes = 112;
// The largest data message a producer may send about a video (stream facts, a decoder's full report): a
// bound the consumer enforces, so a broken producer cannot make it buffer without limit.
inline constexpr size_t kMaxVideoDataBytes = size_t{1} << 20;

struct FrameDescriptor {
  uint64_t video_id = 0;     // job-wide id of the video (the supervisor's, e.g. the ledger row)
  int64_t frame_index = 0;   // display index in the stream, counting frames not sampled
  double pts_seconds = 0;    // presentation time from the stream start
  uint32_t attempt = 0;      // which attempt at the video (re-queued videos start again from frame 0)
  int32_t stream_id = 0;     // the video's stream id, as FrameInfo has it
  int32_t slot = -1;         // kFrame: slot index in the producer's pool; -1 otherwise
  int32_t width = 0;
  int32_t height = 0;
  int32_t pitch = 0;         // bytes per row of both planes
  uint32_t chroma_offset = 0;  // bytes from the slot start to the interleaved chroma plane
  int32_t status_code = 0;   // kVideoEnd: the video's StatusCode
  DescriptorKind kind = DescriptorKind::kFrame;
  PixelFormat format = PixelFormat::kNV12;
  ColorSpace color_space = ColorSpace::kBT709;
  ColorRange color_range = ColorRange::kLimited;
  uint8_t keyframe = 0;
  uint8_t has_cuda_event = 0;  // cuda_event_handle holds a cudaIpcEventHandle_t to wait on before reading
  uint8_t data_last = 0;     // kVideoData: this chunk ends the message
  uint8_t reserved = 0;
  uint64_t sequence = 0;     // descriptors the producer sent on its channel before this one
  int64_t sent_ns = 0;       // producer's steady clock (CLOCK_MONOTONIC, machine-wide) when sent
  // kVideoEnd: short error text, NUL-terminated. kVideoData: the chunk's bytes (frame_index holds the
  // chunk's offset in the message and width its length: a chunk is no frame, so those fields are free).
  char message[kDescriptorMessageBytes] = {};
  uint8_t cuda_event_handle[kCudaIpcEventHandleBytes] = {};
};

static_assert(std::is_trivially_copyable_v<FrameDescriptor>, "descriptors are copied byte-wise between processes");
static_assert(std::is_standard_layout_v<FrameDescriptor>);
static_assert(sizeof(FrameDescriptor) == 256, "the descriptor's size is part of the ring layout");

FrameDescriptor MakeVideoBegin(uint64_t video_id, uint32_t attempt);
// `chroma_offset` is where the chroma plane starts in the slot (pitch * height for a packed frame; NVDEC
// surfaces put it after the luma's aligned height).
FrameDescriptor MakeFrameDescriptor(uint64_t video_id, uint32_t attempt, int slot, const FrameInfo& info,
                                    uint32_t chroma_offset);
// Carries `status` (code and the first bytes of its message) to the consumer.
FrameDescriptor MakeVideoEnd(uint64_t video_id, uint32_t attempt, const Status& status);
FrameDescriptor MakeVideoAbandoned(uint64_t video_id, uint32_t attempt);
// One chunk of a data message: bytes [offset, offset + chunk.size()) of it, chunk.size() <=
// kDescriptorMessageBytes; `last` on the final chunk.
FrameDescriptor MakeVideoData(uint64_t video_id, uint32_t attempt, size_t offset, std::string_view chunk, bool last);

struct VideoDataChunk {
  size_t offset = 0;
  std::string_view bytes;  // into the descriptor's message
  bool last = false;
};
// The chunk a kVideoData descriptor carries (validate it first: ValidateDescriptor).
VideoDataChunk DataChunkOf(const FrameDescriptor& descriptor);

// The FrameInfo a kFrame descriptor describes.
FrameInfo InfoOf(const FrameDescriptor& descriptor);
// The status a kVideoEnd descriptor carries (the message as far as it fitted).
Status StatusOf(const FrameDescriptor& descriptor);
// Copies up to kDescriptorMessageBytes - 1 bytes of `text`, cut at a UTF-8 character boundary.
void SetMessage(FrameDescriptor& descriptor, const std::string& text);
// Checks what a consumer relies on before touching memory: a known kind, for frames a sane geometry whose
// planes fit in `slot_bytes` of a slot below `slot_count`, for data chunks a length within the message and
// an offset within kMaxVideoDataBytes.
Status ValidateDescriptor(const FrameDescriptor& descriptor, int slot_count, size_t slot_bytes);

}  // namespace vidscan::ipc
