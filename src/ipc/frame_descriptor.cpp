#include "ipc/frame_descriptor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace vidscan::ipc {

FrameDescriptor MakeVideoBegin(uint64_t video_id, uint32_t attempt) {
  FrameDescriptor d;
  d.kind = DescriptorKind::kVideoBegin;
  d.video_id = video_id;
  d.attempt = attempt;
  return d;
}

FrameDescriptor MakeFrameDescriptor(uint64_t video_id, uint32_t attempt, int slot, const FrameInfo& info,
                                    uint32_t chroma_offset) {
  FrameDescriptor d;
  d.kind = DescriptorKind::kFrame;
  d.video_id = video_id;
  d.attempt = attempt;
  d.slot = slot;
  d.stream_id = info.stream_id;
  d.frame_index = info.frame_index;
  d.pts_seconds = info.pts_seconds;
  d.width = info.width;
  d.height = info.height;
  d.pitch = info.pitch;
  d.chroma_offset = chroma_offset;
  d.format = info.format;
  d.color_space = info.color_space;
  d.color_range = info.color_range;
  d.keyframe = info.keyframe ? 1 : 0;
  return d;
}

FrameDescriptor MakeVideoEnd(uint64_t video_id, uint32_t attempt, const Status& status) {
  FrameDescriptor d;
  d.kind = DescriptorKind::kVideoEnd;
  d.video_id = video_id;
  d.attempt = attempt;
  d.status_code = static_cast<int32_t>(status.code());
  SetMessage(d, status.message());
  return d;
}

FrameDescriptor MakeVideoAbandoned(uint64_t video_id, uint32_t attempt) {
  FrameDescriptor d;
  d.kind = DescriptorKind::kVideoAbandoned;
  d.video_id = video_id;
  d.attempt = attempt;
  return d;
}

FrameDescriptor MakeVideoData(uint64_t video_id, uint32_t attempt, size_t offset, std::string_view chunk, bool last) {
  FrameDescriptor d;
  d.kind = DescriptorKind::kVideoData;
  d.video_id = video_id;
  d.attempt = attempt;
  const size_t length = std::min(chunk.size(), sizeof(d.message));
  d.frame_index = static_cast<int64_t>(offset);
  d.width = static_cast<int32_t>(length);
  d.data_last = last ? 1 : 0;
  std::memcpy(d.message, chunk.data(), length);
  return d;
}

VideoDataChunk DataChunkOf(const FrameDescriptor& d) {
  VideoDataChunk chunk;
  chunk.offset = static_cast<size_t>(std::max<int64_t>(d.frame_index, 0));
  chunk.bytes = std::string_view(d.message, static_cast<size_t>(std::clamp<int32_t>(d.width, 0, sizeof(d.message))));
  chunk.last = d.data_last != 0;
  return chunk;
}

FrameInfo InfoOf(const FrameDescriptor& d) {
  FrameInfo info;
  info.stream_id = d.stream_id;
  info.frame_index = d.frame_index;
  info.pts_seconds = d.pts_seconds;
  info.width = d.width;
  info.height = d.height;
  info.pitch = d.pitch;
  info.format = d.format;
  info.color_space = d.color_space;
  info.color_range = d.color_range;
  info.keyframe = d.keyframe != 0;
  return info;
}

Status StatusOf(const FrameDescriptor& d) {
  if (d.status_code == 0) return Status::Ok();
  auto code = static_cast<StatusCode>(d.status_code);
  if (d.status_code < 0 || d.status_code > static_cast<int32_t>(StatusCode::kInternal)) code = StatusCode::kInternal;
  size_t length = strnlen(d.message, sizeof(d.message));
  std::string message(d.message, length);
  if (message.empty()) message = "the producer reported a failure without a message";
  return MakeError(code, message);
}

void SetMessage(FrameDescriptor& d, const std::string& text) {
  size_t length = std::min(text.size(), sizeof(d.message) - 1);
  // Do not cut a UTF-8 sequence in half: back up over continuation bytes (10xxxxxx) of a cut character.
  if (length < text.size()) {
    while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80) --length;
  }
  std::memset(d.message, 0, sizeof(d.message));
  std::memcpy(d.message, text.data(), length);
}

Status ValidateDescriptor(const FrameDescriptor& d, int slot_count, size_t slot_bytes) {
  switch (d.kind) {
    case DescriptorKind::kVideoBegin:
    case DescriptorKind::kVideoEnd:
    case DescriptorKind::kVideoAbandoned:
      return Status::Ok();
    case DescriptorKind::kVideoData:
      if (d.width < 0 || static_cast<size_t>(d.width) > sizeof(d.message) || d.frame_index < 0 ||
          static_cast<uint64_t>(d.frame_index) + static_cast<uint64_t>(d.width) > kMaxVideoDataBytes) {
        return MakeError(StatusCode::kCorruptData,
                         fmt::format("video {}: data chunk of {} bytes at offset {} is outside a {} byte message",
                                     d.video_id, d.width, d.frame_index, kMaxVideoDataBytes));
      }
      return Status::Ok();
    case DescriptorKind::kFrame:
      break;
    default:
      return MakeError(StatusCode::kCorruptData, fmt::format("descriptor of unknown kind {}", static_cast<int>(d.kind)));
  }
  if (d.slot < 0 || d.slot >= slot_count) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("video {} frame {}: slot {} outside the pool's {} slots", d.video_id, d.frame_index,
                                 d.slot, slot_count));
  }
  if (d.format != PixelFormat::kNV12 && d.format != PixelFormat::kP016) {
    return MakeError(StatusCode::kCorruptData, fmt::format("video {} frame {}: unknown pixel format", d.video_id, d.frame_index));
  }
  FrameInfo info = InfoOf(d);
  if (d.width <= 0 || d.height <= 0 || d.width > 16384 || d.height > 16384 || d.pitch < info.row_bytes()) {
    return MakeError(StatusCode::kCorruptData, fmt::format("video {} frame {}: geometry {}x{} pitch {} is not a frame",
                                                           d.video_id, d.frame_index, d.width, d.height, d.pitch));
  }
  if (d.chroma_offset < info.luma_bytes() || d.chroma_offset + info.chroma_bytes() > slot_bytes) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("video {} frame {}: planes (luma {} B, chroma {} B at {}) do not fit a {} B slot",
                                 d.video_id, d.frame_index, info.luma_bytes(), info.chroma_bytes(), d.chroma_offset,
                                 slot_bytes));
  }
  return Status::Ok();
}

}  // namespace vidscan::ipc
