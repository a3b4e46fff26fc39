#include "media/demuxer.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <system_error>

#include "media/ffmpeg_util.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace vidscan {
namespace {

VideoCodec CodecFromId(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_H264: return VideoCodec::kH264;
    case AV_CODEC_ID_HEVC: return VideoCodec::kHEVC;
    case AV_CODEC_ID_AV1: return VideoCodec::kAV1;
    default: return VideoCodec::kOther;
  }
}

double RationalToDouble(AVRational r) { return r.den == 0 ? 0.0 : av_q2d(r); }

// BT.601 for SD, BT.709 for HD, when the stream does not say: what players do.
ColorSpace ColorSpaceFrom(AVColorSpace cs, int height, int bit_depth, bool* guessed) {
  *guessed = false;
  switch (cs) {
    case AVCOL_SPC_BT709: return ColorSpace::kBT709;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
    case AVCOL_SPC_SMPTE240M: return ColorSpace::kBT601;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return ColorSpace::kBT2020;
    default: break;
  }
  *guessed = true;
  if (bit_depth > 8 && height > 1080) return ColorSpace::kBT2020;
  return height >= 720 ? ColorSpace::kBT709 : ColorSpace::kBT601;
}

class FfmpegDemuxer final : public Demuxer {
 public:
  const VideoStreamInfo& info() const override { return info_; }
  const AVCodecParameters* codec_parameters() const override {
    return bsf_ ? bsf_->par_out : format_->streams[info_.stream_index]->codecpar;
  }
  int64_t file_size() const override { return file_size_; }
  int64_t rejected_packets() const override { return rejected_packets_; }

  Status Init(const std::string& path);
  Expected<bool> ReadPacket(EncodedPacket* packet) override;

 private:
  Status InitBitstreamFilter();
  void FillPacket(EncodedPacket* out) const;

  VideoStreamInfo info_;
  FormatContextPtr format_;
  BsfContextPtr bsf_;
  PacketPtr packet_{av_packet_alloc()};
  bool input_ended_ = false;
  int64_t file_size_ = 0;
  int64_t rejected_packets_ = 0;
};

Status FfmpegDemuxer::Init(const std::string& path) {
  info_.path = path;
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return MakeError(StatusCode::kNotFound, fmt::format("{}: no such file", path));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("{}: not a regular file", path));
  }
  file_size_ = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (file_size_ == 0) {
    return MakeError(StatusCode::kCorruptData, fmt::format("{}: file is empty (0 bytes)", path));
  }
  if (!packet_) return MakeError(StatusCode::kOutOfMemory, "av_packet_alloc failed");

  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (err < 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: not a readable media file ({})", path, AvErrorString(err)));
  }
  format_.reset(raw);
  err = avformat_find_stream_info(format_.get(), nullptr);
  if (err < 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: cannot read stream headers ({})", path, AvErrorString(err)));
  }

  int best = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (best < 0) {
    return MakeError(StatusCode::kUnsupported, fmt::format("{}: no video stream in this {} file", path,
                                                           format_->iformat->name));
  }
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    AVStream* s = format_->streams[i];
    s->discard = (static_cast<int>(i) == best) ? AVDISCARD_DEFAULT : AVDISCARD_ALL;  // audio etc. ignored
    if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) ++info_.audio_streams;
  }

  AVStream* stream = format_->streams[best];
  const AVCodecParameters* par = stream->codecpar;
  info_.container = format_->iformat->name;
  info_.stream_index = best;
  info_.codec = CodecFromId(par->codec_id);
  info_.codec_name = avcodec_get_name(par->codec_id);
  if (const char* profile = avcodec_profile_name(par->codec_id, par->profile)) info_.profile = profile;
  info_.width = par->width;
  info_.height = par->height;
  if (info_.width <= 0 || info_.height <= 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: video stream has no valid frame size ({}x{})", path, par->width,
                                 par->height));
  }
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(par->format));
  if (desc) {
    info_.bit_depth = desc->comp[0].depth;
    if (desc->nb_components == 1) {
      info_.chroma_format_idc = 0;
    } else if (desc->log2_chroma_w == 1 && desc->log2_chroma_h == 1) {
      info_.chroma_format_idc = 1;
    } else if (desc->log2_chroma_w == 1) {
      info_.chroma_format_idc = 2;
    } else {
      info_.chroma_format_idc = 3;
    }
  } else if (par->bits_per_raw_sample > 0) {
    info_.bit_depth = par->bits_per_raw_sample;
  }
  info_.declared_avg_fps = RationalToDouble(stream->avg_frame_rate);
  double real_fps = RationalToDouble(stream->r_frame_rate);
  info_.fps = (real_fps > 0 && real_fps < 1000) ? real_fps : info_.declared_avg_fps;
  info_.time_base_num = stream->time_base.num;
  info_.time_base_den = stream->time_base.den;
  info_.start_pts = stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0;
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
    info_.duration_seconds = stream->duration * av_q2d(stream->time_base);
  } else if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0) {
    info_.duration_seconds = static_cast<double>(format_->duration) / AV_TIME_BASE;
  }
  info_.frame_count_estimate = info_.fps > 0 ? std::llround(info_.duration_seconds * info_.fps) : 0;
  if (info_.frame_count_estimate == 0 && stream->nb_frames > 0) info_.frame_count_estimate = stream->nb_frames;
  info_.bit_rate = par->bit_rate > 0 ? par->bit_rate : format_->bit_rate;
  info_.color_space = ColorSpaceFrom(par->color_space, par->height, info_.bit_depth, &info_.color_space_guessed);
  info_.color_range = par->color_range == AVCOL_RANGE_JPEG ? ColorRange::kFull : ColorRange::kLimited;
  if (const char* p = av_color_primaries_name(par->color_primaries)) info_.color_primaries = p;
  if (const char* t = av_color_transfer_name(par->color_trc)) info_.color_transfer = t;

  return InitBitstreamFilter();
}

Status FfmpegDemuxer::InitBitstreamFilter() {
  const char* name = nullptr;
  if (info_.codec == VideoCodec::kH264) name = "h264_mp4toannexb";
  if (info_.codec == VideoCodec::kHEVC) name = "hevc_mp4toannexb";
  if (!name) return Status::Ok();  // AV1 and others are passed as the container stores them
  const AVBitStreamFilter* filter = av_bsf_get_by_name(name);
  if (!filter) return MakeError(StatusCode::kUnsupported, fmt::format("FFmpeg lacks the {} filter", name));
  AVBSFContext* raw = nullptr;
  int err = av_bsf_alloc(filter, &raw);
  if (err < 0) return MakeError(StatusCode::kOutOfMemory, "av_bsf_alloc: " + AvErrorString(err));
  bsf_.reset(raw);
  AVStream* stream = format_->streams[info_.stream_index];
  avcodec_parameters_copy(bsf_->par_in, stream->codecpar);
  bsf_->time_base_in = stream->time_base;
  err = av_bsf_init(bsf_.get());
  if (err < 0) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: codec headers are unreadable ({} failed: {})", info_.path, name,
                                 AvErrorString(err)));
  }
  return Status::Ok();
}

void FfmpegDemuxer::FillPacket(EncodedPacket* out) const {
  out->data = packet_->data;
  out->size = static_cast<size_t>(packet_->size);
  out->pts = packet_->pts == AV_NOPTS_VALUE ? EncodedPacket::kNoTimestamp : packet_->pts;
  out->dts = packet_->dts == AV_NOPTS_VALUE ? EncodedPacket::kNoTimestamp : packet_->dts;
  out->keyframe = (packet_->flags & AV_PKT_FLAG_KEY) != 0;
  out->corrupt = (packet_->flags & AV_PKT_FLAG_CORRUPT) != 0;
}

Expected<bool> FfmpegDemuxer::ReadPacket(EncodedPacket* out) {
  av_packet_unref(packet_.get());
  while (true) {
    if (bsf_) {
      int err = av_bsf_receive_packet(bsf_.get(), packet_.get());
      if (err == 0) {
        FillPacket(out);
        return true;
      }
      if (err == AVERROR_EOF) return false;
      if (err != AVERROR(EAGAIN)) {
        // A packet the filter cannot parse (damaged NAL length fields): drop it and go on.
        ++rejected_packets_;
        continue;
      }
    } else if (input_ended_) {
      return false;
    }
    if (input_ended_) return false;

    int err = av_read_frame(format_.get(), packet_.get());
    if (err == AVERROR_EOF) {
      input_ended_ = true;
      if (bsf_) av_bsf_send_packet(bsf_.get(), nullptr);  // flush
      continue;
    }
    if (err < 0) {
      input_ended_ = true;
      if (bsf_) av_bsf_send_packet(bsf_.get(), nullptr);
      return MakeError(StatusCode::kIoError,
                       fmt::format("{}: read failed ({})", info_.path, AvErrorString(err)));
    }
    if (packet_->stream_index != info_.stream_index) {
      av_packet_unref(packet_.get());
      continue;
    }
    if (!bsf_) {
      FillPacket(out);
      return true;
    }
    err = av_bsf_send_packet(bsf_.get(), packet_.get());  // takes the reference
    if (err < 0) {
      ++rejected_packets_;
      av_packet_unref(packet_.get());
    }
  }
}

}  // namespace

const char* VideoCodecName(VideoCodec c) {
  switch (c) {
    case VideoCodec::kH264: return "h264";
    case VideoCodec::kHEVC: return "hevc";
    case VideoCodec::kAV1: return "av1";
    case VideoCodec::kOther: return "other";
  }
  return "other";
}

Expected<std::unique_ptr<Demuxer>> Demuxer::Open(const std::string& path) {
  av_log_set_level(AV_LOG_QUIET);  // FFmpeg's own messages are replaced by vidscan's errors
  auto demuxer = std::make_unique<FfmpegDemuxer>();
  VS_RETURN_IF_ERROR(demuxer->Init(path));
  return std::unique_ptr<Demuxer>(std::move(demuxer));
}

}  // namespace vidscan
