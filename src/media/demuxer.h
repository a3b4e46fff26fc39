// Demuxing with libavformat: opens a file, picks its video stream, and hands out compressed packets in
// decode order. H.264/HEVC packets are rewritten to Annex-B (mp4toannexb) so that every decoder reads
// the same byte stream whatever the container.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "media/stream_info.h"

struct AVCodecParameters;

namespace vidscan {

// A view of one compressed packet; valid until the next Demuxer::ReadPacket.
struct EncodedPacket {
  const uint8_t* data = nullptr;
  size_t size = 0;
  int64_t pts = 0;        // in the stream's time base; kNoTimestamp when the container has none
  int64_t dts = 0;
  bool keyframe = false;
  bool corrupt = false;   // the container flagged it damaged or short
  static constexpr int64_t kNoTimestamp = INT64_MIN;
};

class Demuxer {
 public:
  // Opens the file and reads its stream headers. Errors name the file and say why (empty file, not a
  // media file, no video stream).
  static Expected<std::unique_ptr<Demuxer>> Open(const std::string& path);
  virtual ~Demuxer() = default;

  virtual const VideoStreamInfo& info() const = 0;
  // Codec parameters of the packets ReadPacket returns (after the Annex-B rewrite).
  virtual const AVCodecParameters* codec_parameters() const = 0;
  // Next video packet; false at the end of the file. A read error past the start is returned as an error
  // status (kIoError / kCorruptData) and the caller may stop or call again.
  virtual Expected<bool> ReadPacket(EncodedPacket* packet) = 0;
  // Bytes of the file read so far and its size, to tell a truncated file from a short one.
  virtual int64_t file_size() const = 0;
  // Packets the bitstream filter or the container rejected and that were skipped.
  virtual int64_t rejected_packets() const = 0;
};

}  // namespace vidscan
