#include "decode/cpu/cpu_decoder.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "decode/recovery_gate.h"
#include "media/ffmpeg_util.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace vidscan {
namespace {

constexpr int kPitchAlignment = 64;

int AlignUp(int v, int a) { return (v + a - 1) / a * a; }

// Host surfaces, allocated once per decoder.
class HostSurfacePool {
 public:
  HostSurfacePool(int count, int width, int height, PixelFormat format)
      : pool_(count), format_(format), width_(width), height_(height) {
    pitch_ = AlignUp(width * BytesPerSample(format), kPitchAlignment);
    slot_bytes_ = static_cast<size_t>(pitch_) * (height + (height + 1) / 2);
    storage_.resize(slot_bytes_ * count);
  }
  // Frames handed on may still be queued for analysis after the decoder is done with the file.
  ~HostSurfacePool() { pool_.WaitUntilAllReturned(); }
  SlotPool& pool() { return pool_; }
  int pitch() const { return pitch_; }
  uint8_t* luma(int slot) { return storage_.data() + slot_bytes_ * slot; }
  uint8_t* chroma(int slot) { return luma(slot) + static_cast<size_t>(pitch_) * height_; }
  bool Fits(int width, int height, PixelFormat format) const {
    return width == width_ && height == height_ && format == format_;
  }

 private:
  SlotPool pool_;
  PixelFormat format_;
  int width_, height_, pitch_ = 0;
  size_t slot_bytes_ = 0;
  std::vector<uint8_t> storage_;
};

// Writes a planar/semi-planar libavcodec frame as NV12 (8-bit) or P016 (value in the high bits).
Status ConvertToSemiPlanar(const AVFrame* f, uint8_t* luma, uint8_t* chroma, int pitch) {
  const int w = f->width, h = f->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  switch (f->format) {
    case AV_PIX_FMT_YUV420P:
    case AV_PIX_FMT_YUVJ420P:
      for (int y = 0; y < h; ++y) std::memcpy(luma + y * pitch, f->data[0] + y * f->linesize[0], w);
      for (int y = 0; y < ch; ++y) {
        const uint8_t* u = f->data[1] + y * f->linesize[1];
        const uint8_t* v = f->data[2] + y * f->linesize[2];
        uint8_t* out = chroma + y * pitch;
        for (int x = 0; x < cw; ++x) {
          out[2 * x] = u[x];
          out[2 * x + 1] = v[x];
        }
      }
      return Status::Ok();
    case AV_PIX_FMT_NV12:
      for (int y = 0; y < h; ++y) std::memcpy(luma + y * pitch, f->data[0] + y * f->linesize[0], w);
      for (int y = 0; y < ch; ++y) std::memcpy(chroma + y * pitch, f->data[1] + y * f->linesize[1], 2 * cw);
      return Status::Ok();
    case AV_PIX_FMT_YUV420P10LE:
    case AV_PIX_FMT_YUV420P12LE: {
      const int shift = f->format == AV_PIX_FMT_YUV420P10LE ? 6 : 4;
      for (int y = 0; y < h; ++y) {
        const auto* in = reinterpret_cast<const uint16_t*>(f->data[0] + y * f->linesize[0]);
        auto* out = reinterpret_cast<uint16_t*>(luma + y * pitch);
        for (int x = 0; x < w; ++x) out[x] = static_cast<uint16_t>(in[x] << shift);
      }
      for (int y = 0; y < ch; ++y) {
        const auto* u = reinterpret_cast<const uint16_t*>(f->data[1] + y * f->linesize[1]);
        const auto* v = reinterpret_cast<const uint16_t*>(f->data[2] + y * f->linesize[2]);
        auto* out = reinterpret_cast<uint16_t*>(chroma + y * pitch);
        for (int x = 0; x < cw; ++x) {
          out[2 * x] = static_cast<uint16_t>(u[x] << shift);
          out[2 * x + 1] = static_cast<uint16_t>(v[x] << shift);
        }
      }
      return Status::Ok();
    }
    case AV_PIX_FMT_P010LE:
      for (int y = 0; y < h; ++y) std::memcpy(luma + y * pitch, f->data[0] + y * f->linesize[0], 2 * w);
      for (int y = 0; y < ch; ++y) std::memcpy(chroma + y * pitch, f->data[1] + y * f->linesize[1], 4 * cw);
      return Status::Ok();
    default:
      return MakeError(StatusCode::kUnsupported,
                       fmt::format("decoded pixel format {} is not supported (4:2:0 8/10/12-bit only)",
                                   av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format))));
  }
}

// libavcodec reports much of the damage it conceals only through its log (the HEVC decoder, for one, logs
// an out-of-range syntax element and goes on). This callback counts error-level messages per decoder: the
// decoder's context (and its frame-thread copies) carry the counter in `opaque`.
std::atomic<int64_t>* ErrorCounterOf(void* avcl) {
  if (!avcl) return nullptr;
  const AVClass* cls = *static_cast<AVClass**>(avcl);
  if (cls != avcodec_get_class()) return nullptr;
  return static_cast<std::atomic<int64_t>*>(static_cast<AVCodecContext*>(avcl)->opaque);
}

void CountDecoderErrors(void* avcl, int level, const char*, va_list) {
  if (level > AV_LOG_ERROR) return;
  if (auto* counter = ErrorCounterOf(avcl)) counter->fetch_add(1, std::memory_order_relaxed);
}

void InstallLogCallback() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(&CountDecoderErrors); });
}

class CpuDecoder final : public VideoDecoder {
 public:
  CpuDecoder(const VideoStreamInfo& info, const DecoderOptions& options, FrameSink sink)
      : info_(info),
        options_(options),
        sink_(std::move(sink)),
        sampler_(options.sampling),
        clock_(info.fps, info.time_base_num, info.time_base_den, info.start_pts),
        surfaces_(options.surface_pool_size, info.width, info.height, info.surface_format()) {}

  Status Init(const AVCodecParameters* par);
  Status Decode(const EncodedPacket& packet) override;
  Status Flush() override;
  void NoteSkippedPacket() override {
    ++counters_.packets_skipped;
    ++frames_lost_;
  }
  const DecodeCounters& counters() const override { return counters_; }
  std::string description() const override {
    return fmt::format("libavcodec {} ({} threads)", codec_->name, context_->thread_count);
  }

 private:
  Status Drain();
  Status Deliver(const AVFrame* frame);
  Status CheckLoggedErrors();

  VideoStreamInfo info_;
  DecoderOptions options_;
  FrameSink sink_;
  FrameSampler sampler_;
  FrameClock clock_;
  HostSurfacePool surfaces_;
  const AVCodec* codec_ = nullptr;
  CodecContextPtr context_;
  PacketPtr packet_{av_packet_alloc()};
  FramePtr frame_{av_frame_alloc()};
  DecodeCounters counters_;
  std::atomic<int64_t> logged_errors_{0};
  int64_t logged_errors_seen_ = 0;
  RecoveryGate recovery_;
  int64_t display_count_ = 0;
  int64_t frames_lost_ = 0;
};

Status CpuDecoder::Init(const AVCodecParameters* par) {
  if (!packet_ || !frame_) return MakeError(StatusCode::kOutOfMemory, "av_packet_alloc/av_frame_alloc failed");
  if (par->codec_id == AV_CODEC_ID_AV1) codec_ = avcodec_find_decoder_by_name("libdav1d");
  if (!codec_) codec_ = avcodec_find_decoder(par->codec_id);
  if (!codec_) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("no CPU decoder for codec {} in this FFmpeg build", avcodec_get_name(par->codec_id)));
  }
  context_.reset(avcodec_alloc_context3(codec_));
  if (!context_) return MakeError(StatusCode::kOutOfMemory, "avcodec_alloc_context3 failed");
  InstallLogCallback();
  context_->opaque = &logged_errors_;
  int err = avcodec_parameters_to_context(context_.get(), par);
  if (err < 0) return MakeError(StatusCode::kInternal, "avcodec_parameters_to_context: " + AvErrorString(err));
  int threads = options_.cpu_threads > 0 ? options_.cpu_threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  context_->thread_count = std::min(threads, 16);
  context_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  // Hand damaged pictures out flagged rather than hiding them, so corruption is counted (and those
  // frames dropped) instead of passing unnoticed.
  context_->flags |= AV_CODEC_FLAG_OUTPUT_CORRUPT;
  context_->err_recognition |= AV_EF_CRCCHECK | AV_EF_BITSTREAM;
  if (options_.sampling.keyframes_only()) context_->skip_frame = AVDISCARD_NONKEY;
  err = avcodec_open2(context_.get(), codec_, nullptr);
  if (err < 0) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("cannot open the {} decoder ({})", codec_->name, AvErrorString(err)));
  }
  return Status::Ok();
}

Status CpuDecoder::Deliver(const AVFrame* frame) {
  const int64_t index = display_count_++ + frames_lost_;
  ++counters_.frames_decoded;
#ifdef AV_FRAME_FLAG_KEY
  const bool intra = (frame->flags & AV_FRAME_FLAG_KEY) != 0 || frame->pict_type == AV_PICTURE_TYPE_I;
#else  // FFmpeg before 6.1
  const bool intra = frame->key_frame != 0 || frame->pict_type == AV_PICTURE_TYPE_I;
#endif
  const bool damaged = frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT);
  if (!recovery_.Admit(damaged, intra, &counters_)) return Status::Ok();
  const int64_t pts = frame->pts != AV_NOPTS_VALUE ? frame->pts : EncodedPacket::kNoTimestamp;
  FrameInfo fi;
  fi.stream_id = options_.stream_id;
  fi.pts_seconds = clock_.Seconds(pts, index);
  fi.frame_index = options_.sampling.keyframes_only() ? clock_.IndexAt(fi.pts_seconds) : index;
    fi.keyframe = intra;
  if (!sampler_.Keep(fi.frame_index, fi.pts_seconds, fi.keyframe)) return Status::Ok();

  fi.width = frame->width;
  fi.height = frame->height;
  fi.format = info_.surface_format();
  fi.color_space = info_.color_space;
  fi.color_range = (frame->color_range == AVCOL_RANGE_JPEG || info_.color_range == ColorRange::kFull)
                       ? ColorRange::kFull
                       : ColorRange::kLimited;
  if (!surfaces_.Fits(fi.width, fi.height, fi.format)) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("frame {} changes resolution to {}x{} (stream is {}x{}); resolution changes "
                                 "inside a stream are not supported",
                                 fi.frame_index, fi.width, fi.height, info_.width, info_.height));
  }
  fi.pitch = surfaces_.pitch();
  SlotLease lease(&surfaces_.pool(), surfaces_.pool().Acquire());
  DecodedFrame out;
  out.view.info = fi;
  out.view.memory = MemoryKind::kHost;
  out.view.luma = surfaces_.luma(lease.slot());
  out.view.chroma = surfaces_.chroma(lease.slot());
  out.lease = std::move(lease);
  VS_RETURN_IF_ERROR(ConvertToSemiPlanar(frame, out.view.luma, out.view.chroma, fi.pitch));
  ++counters_.frames_delivered;
  return sink_(std::move(out));
}

Status CpuDecoder::Drain() {
  while (true) {
    int err = avcodec_receive_frame(context_.get(), frame_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::Ok();
    if (err < 0) {
      ++counters_.decode_errors;
      return MakeError(StatusCode::kCorruptData, "decode failed: " + AvErrorString(err));
    }
    Status st = Deliver(frame_.get());
    av_frame_unref(frame_.get());
    VS_RETURN_IF_ERROR(st);
  }
}

Status CpuDecoder::Decode(const EncodedPacket& packet) {
  ++counters_.packets;
  av_packet_unref(packet_.get());
  packet_->data = const_cast<uint8_t*>(packet.data);  // not ref-counted: libavcodec copies it
  packet_->size = static_cast<int>(packet.size);
  packet_->pts = packet.pts == EncodedPacket::kNoTimestamp ? AV_NOPTS_VALUE : packet.pts;
  packet_->dts = packet.dts == EncodedPacket::kNoTimestamp ? AV_NOPTS_VALUE : packet.dts;
  if (packet.pts == EncodedPacket::kNoTimestamp && options_.sampling.keyframes_only()) {
    // Keyframes only and no presentation times (AVI): there is no display index to count from, and a
    // keyframe's decode time is its display time, as the NVDEC path also assumes.
    packet_->pts = packet_->dts;
  }
  packet_->flags = packet.keyframe ? AV_PKT_FLAG_KEY : 0;
  int err = avcodec_send_packet(context_.get(), packet_.get());
  packet_->data = nullptr;
  packet_->size = 0;
  Status drained = Drain();
  if (err < 0 && err != AVERROR(EAGAIN)) {
    ++counters_.decode_errors;
    return MakeError(StatusCode::kCorruptData, "packet rejected by the decoder: " + AvErrorString(err));
  }
  VS_RETURN_IF_ERROR(drained);
  return CheckLoggedErrors();
}

Status CpuDecoder::CheckLoggedErrors() {
  const int64_t logged = logged_errors_.load(std::memory_order_relaxed);
  if (logged == logged_errors_seen_) return Status::Ok();
  logged_errors_seen_ = logged;
  ++counters_.decode_errors;
  return MakeError(StatusCode::kCorruptData, "the decoder reported damaged data");
}

Status CpuDecoder::Flush() {
  avcodec_send_packet(context_.get(), nullptr);
  VS_RETURN_IF_ERROR(Drain());
  return CheckLoggedErrors();
}

}  // namespace

Expected<std::unique_ptr<VideoDecoder>> CreateCpuDecoder(const VideoStreamInfo& info,
                                                         const AVCodecParameters* codec_parameters,
                                                         const DecoderOptions& options, FrameSink sink) {
  auto decoder = std::make_unique<CpuDecoder>(info, options, std::move(sink));
  VS_RETURN_IF_ERROR(decoder->Init(codec_parameters));
  return std::unique_ptr<VideoDecoder>(std::move(decoder));
}

}  // namespace vidscan
