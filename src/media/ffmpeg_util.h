// RAII owners for FFmpeg handles and FFmpeg error text; shared by the demuxer and the CPU decoder.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
}

#include <memory>
#include <string>

namespace vidscan {

struct AVFormatContextCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct AVCodecContextFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct AVPacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct AVFrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct AVBSFContextFreer {
  void operator()(AVBSFContext* b) const { av_bsf_free(&b); }
};

using FormatContextPtr = std::unique_ptr<AVFormatContext, AVFormatContextCloser>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, AVCodecContextFreer>;
using PacketPtr = std::unique_ptr<AVPacket, AVPacketFreer>;
using FramePtr = std::unique_ptr<AVFrame, AVFrameFreer>;
using BsfContextPtr = std::unique_ptr<AVBSFContext, AVBSFContextFreer>;

inline std::string AvErrorString(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

}  // namespace vidscan
