#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "decode/decoder.h"

namespace vidscan {

const char* DecoderDeviceName(DecoderDevice d) { return d == DecoderDevice::kCpu ? "cpu" : "gpu"; }

namespace {

// The last frame's time must reach this share of the declared duration, or the file counts as truncated.
constexpr double kTruncationCoverage = 0.9;

Status Summarise(const std::string& path, const VideoStreamInfo& info, const DecodeCounters& c,
                 double covered_seconds, const Status& read_error) {
  if (!read_error.ok()) return read_error;
  if (c.frames_decoded == 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: no frame could be decoded ({} packets, {} decode errors)", path,
                                 c.packets, c.decode_errors));
  }
  if (info.duration_seconds > 2.0 / std::max(info.fps, 1.0) &&
      covered_seconds < info.duration_seconds * kTruncationCoverage) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: truncated: video ends at {:.2f} s of the {:.2f} s the container declares "
                                 "({} frames decoded)",
                                 path, covered_seconds, info.duration_seconds, c.frames_decoded));
  }
  if (c.decode_errors > 0 || c.frames_corrupt > 0 || c.packets_skipped > 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: corrupt stream: {} decode errors, {} damaged frames dropped, then {} frames "
                                 "and {} packets skipped until the next keyframe; {} good frames decoded",
                                 path, c.decode_errors, c.frames_corrupt, c.frames_skipped, c.packets_skipped,
                                 c.frames_decoded - c.frames_corrupt - c.frames_skipped));
  }
  return Status::Ok();
}

}  // namespace

FileDecodeReport DecodeFile(const std::string& path, const DecoderOptions& options, const FrameSink& sink) {
  FileDecodeReport report;
  report.path = path;
  auto start = std::chrono::steady_clock::now();
  auto finish = [&](Status status) {
    report.status = std::move(status);
    report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  };

  auto demuxer = Demuxer::Open(path);
  if (!demuxer.ok()) return finish(demuxer.status());
  report.info = (*demuxer)->info();
  const VideoStreamInfo& info = report.info;
  if (options.on_open) options.on_open(info);

  double last_frame_seconds = -1;
  FrameSink tracking_sink = [&](DecodedFrame&& frame) {
    last_frame_seconds = std::max(last_frame_seconds, frame.view.info.pts_seconds);
    return sink(std::move(frame));
  };
  // Track coverage through every decoded frame, not only sampled ones: the decoder reports its own span.
  auto decoder = VideoDecoder::Create(info, (*demuxer)->codec_parameters(), options, tracking_sink);
  if (!decoder.ok()) return finish(decoder.status().WithContext(path));

  FrameClock clock(info.fps, info.time_base_num, info.time_base_den, info.start_pts);
  bool waiting_for_keyframe = false;
  double last_packet_seconds = 0;
  Status read_error;
  EncodedPacket packet;
  while (true) {
    auto more = (*demuxer)->ReadPacket(&packet);
    if (!more.ok()) {
      read_error = more.status();
      break;
    }
    if (!*more) break;
    int64_t ts = packet.pts != EncodedPacket::kNoTimestamp ? packet.pts : packet.dts;
    if (ts != EncodedPacket::kNoTimestamp) {
      last_packet_seconds = std::max(last_packet_seconds, clock.Seconds(ts, 0));
    }
    if (options.sampling.keyframes_only() && !packet.keyframe) continue;  // never decoded at all
    if (waiting_for_keyframe) {
      if (!packet.keyframe) {
        (*decoder)->NoteSkippedPacket();
        continue;
      }
      waiting_for_keyframe = false;
    }
    Status st = (*decoder)->Decode(packet);
    if (st.code() == StatusCode::kCorruptData) {
      waiting_for_keyframe = true;
      continue;
    }
    if (!st.ok()) return finish(st.WithContext(path));
  }
  Status flush = (*decoder)->Flush();
  report.counters = (*decoder)->counters();
  report.counters.packets_skipped += (*demuxer)->rejected_packets();
  if (!flush.ok() && flush.code() != StatusCode::kCorruptData) return finish(flush.WithContext(path));

  // Covered video time: the later of the last decoded frame and the last packet that reached the demuxer.
  double frame_span = 1.0 / std::max(info.fps, 1.0);
  report.decoded_video_seconds = std::max(last_frame_seconds, last_packet_seconds) + frame_span;
  if (report.counters.frames_delivered == 0 && !options.sampling.keyframes_only()) {
    report.decoded_video_seconds = last_packet_seconds + frame_span;
  }
  return finish(Summarise(path, info, report.counters, report.decoded_video_seconds, read_error));
}

}  // namespace vidscan
