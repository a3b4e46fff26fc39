#include "decode/nvdec/nvdec_decoder.h"

// The loader prints to stderr when the driver is missing; vidscan reports that itself, once.
#define FFNV_LOG_FUNC(logctx, msg, ...) ((void)(logctx))
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...) ((void)(logctx))
#include <ffnvcodec/dynlink_loader.h>
#include <fmt/format.h>

#include "decode/recovery_gate.h"

#include <array>
#include <map>
#include <mutex>

namespace vidscan {
namespace {

constexpr int kSurfacePitchAlignment = 256;
// Pictures the parser may hold before display: lets NVDEC work ahead while earlier frames are copied.
constexpr unsigned kDisplayDelay = 4;

// The driver's entry points, loaded once per process.
struct DriverApi {
  CudaFunctions* cuda = nullptr;
  CuvidFunctions* cuvid = nullptr;
  Status status;
};

const DriverApi& Driver() {
  static DriverApi api = [] {
    DriverApi a;
    if (cuda_load_functions(&a.cuda, nullptr) != 0) {
      a.status = MakeError(StatusCode::kUnavailable, "NVIDIA driver (libcuda.so.1) not found");
      return a;
    }
    if (cuvid_load_functions(&a.cuvid, nullptr) != 0) {
      a.status = MakeError(StatusCode::kUnavailable, "NVDEC library (libnvcuvid.so.1) not found");
      return a;
    }
    CUresult r = a.cuda->cuInit(0);
    if (r != CUDA_SUCCESS) {
      a.status = MakeError(StatusCode::kUnavailable, fmt::format("cuInit failed (CUDA error {})", static_cast<int>(r)));
    }
    return a;
  }();
  return api;
}

std::string CuErrorText(CUresult r) {
  const char* name = nullptr;
  if (Driver().cuda && Driver().cuda->cuGetErrorName(r, &name) == CUDA_SUCCESS && name) return name;
  return fmt::format("CUDA error {}", static_cast<int>(r));
}

Status CuCheck(CUresult r, const char* call) {
  if (r == CUDA_SUCCESS) return Status::Ok();
  StatusCode code = r == static_cast<CUresult>(2) /* CUDA_ERROR_OUT_OF_MEMORY */ ? StatusCode::kOutOfMemory : StatusCode::kInternal;
  return MakeError(code, fmt::format("{} failed: {}", call, CuErrorText(r)));
}

// The device's primary context, retained for the life of the process: the CUDA runtime uses the same
// one, so device pointers written here are valid in later stages' kernels.
Expected<CUcontext> PrimaryContext(int gpu_index) {
  static std::mutex mutex;
  static std::map<int, CUcontext> contexts;
  std::lock_guard lock(mutex);
  if (auto it = contexts.find(gpu_index); it != contexts.end()) return it->second;
  const DriverApi& d = Driver();
  VS_RETURN_IF_ERROR(d.status);
  int count = 0;
  VS_RETURN_IF_ERROR(CuCheck(d.cuda->cuDeviceGetCount(&count), "cuDeviceGetCount"));
  if (gpu_index < 0 || gpu_index >= count) {
    return MakeError(StatusCode::kUnavailable, fmt::format("GPU {} not present ({} GPUs found)", gpu_index, count));
  }
  CUdevice device = 0;
  VS_RETURN_IF_ERROR(CuCheck(d.cuda->cuDeviceGet(&device, gpu_index), "cuDeviceGet"));
  // Waits block instead of spinning: with one decode thread per session, spinning syncs starve the CPU
  // work (demux, parse) of the other sessions long before NVDEC is full. Best effort: a context the CUDA
  // runtime already made keeps its flags.
  d.cuda->cuDevicePrimaryCtxSetFlags(device, CU_CTX_SCHED_BLOCKING_SYNC);
  CUcontext ctx = nullptr;
  VS_RETURN_IF_ERROR(CuCheck(d.cuda->cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain"));
  contexts[gpu_index] = ctx;
  return ctx;
}

// Makes a context current for a scope.
class ScopedContext {
 public:
  explicit ScopedContext(CUcontext ctx) { Driver().cuda->cuCtxPushCurrent(ctx); }
  ~ScopedContext() {
    CUcontext popped = nullptr;
    Driver().cuda->cuCtxPopCurrent(&popped);
  }
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
};

cudaVideoCodec NvCodec(VideoCodec c) {
  switch (c) {
    case VideoCodec::kH264: return cudaVideoCodec_H264;
    case VideoCodec::kHEVC: return cudaVideoCodec_HEVC;
    case VideoCodec::kAV1: return cudaVideoCodec_AV1;
    default: return cudaVideoCodec_NumCodecs;
  }
}

class NvdecDecoder final : public VideoDecoder {
 public:
  NvdecDecoder(const VideoStreamInfo& info, const DecoderOptions& options, FrameSink sink, CUcontext ctx)
      : info_(info),
        options_(options),
        sink_(std::move(sink)),
        sampler_(options.sampling),
        clock_(info.fps, info.time_base_num, info.time_base_den, info.start_pts),
        ctx_(ctx),
        pool_(options.surface_pool_size) {}
  ~NvdecDecoder() override;

  Status Init();
  Status Decode(const EncodedPacket& packet) override;
  Status Flush() override;
  void NoteSkippedPacket() override {
    ++counters_.packets_skipped;
    ++frames_lost_;
  }
  const DecodeCounters& counters() const override { return counters_; }
  std::string description() const override { return fmt::format("nvdec (GPU {})", options_.gpu_index); }

 private:
  static int CUDAAPI OnSequence(void* self, CUVIDEOFORMAT* format) {
    return static_cast<NvdecDecoder*>(self)->HandleSequence(format);
  }
  static int CUDAAPI OnDecode(void* self, CUVIDPICPARAMS* params) {
    return static_cast<NvdecDecoder*>(self)->HandleDecode(params);
  }
  static int CUDAAPI OnDisplay(void* self, CUVIDPARSERDISPINFO* info) {
    return static_cast<NvdecDecoder*>(self)->HandleDisplay(info);
  }
  int HandleSequence(CUVIDEOFORMAT* format);
  int HandleDecode(CUVIDPICPARAMS* params);
  int HandleDisplay(CUVIDPARSERDISPINFO* info);
  Status CreateDecoder(const CUVIDEOFORMAT& format);
  Status DeliverPicture(const CUVIDPARSERDISPINFO& disp);
  Status Parse(const CUVIDSOURCEDATAPACKET& packet);

  const CuvidFunctions& nv() const { return *Driver().cuvid; }
  const CudaFunctions& cu() const { return *Driver().cuda; }

  VideoStreamInfo info_;
  DecoderOptions options_;
  FrameSink sink_;
  FrameSampler sampler_;
  FrameClock clock_;
  CUcontext ctx_;
  CUvideoctxlock lock_ = nullptr;
  CUvideoparser parser_ = nullptr;
  CUvideodecoder decoder_ = nullptr;
  CUstream stream_ = nullptr;

  // Output surfaces: one device allocation, fixed at the first sequence header.
  SlotPool pool_;
  CUdeviceptr surfaces_ = 0;
  int surface_width_ = 0, surface_height_ = 0, surface_pitch_ = 0;
  size_t surface_bytes_ = 0;
  PixelFormat surface_format_ = PixelFormat::kNV12;

  Status fatal_;             // an error inside a callback that must end decoding
  bool packet_failed_ = false;  // the current packet hit a decode error
  bool use_packet_times_ = false;
  bool times_decided_ = false;
  DecodeCounters counters_;
  RecoveryGate recovery_;
  bool recovering_ = false;
  std::array<bool, 64> intra_by_surface_{};  // per decode surface: was the picture in it intra-coded
  int64_t display_count_ = 0;
  int64_t frames_lost_ = 0;
};

Status NvdecDecoder::Init() {
  ScopedContext scoped(ctx_);
  VS_RETURN_IF_ERROR(CuCheck(nv().cuvidCtxLockCreate(&lock_, ctx_), "cuvidCtxLockCreate"));
  VS_RETURN_IF_ERROR(CuCheck(cu().cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"));
  CUVIDPARSERPARAMS params = {};
  params.CodecType = NvCodec(info_.codec);
  params.ulMaxNumDecodeSurfaces = 1;  // raised by the sequence callback's return value
  params.ulClockRate = 0;
  params.ulErrorThreshold = 0;       // do not hand fully broken pictures to the decoder
  params.ulMaxDisplayDelay = kDisplayDelay;
  params.pUserData = this;
  params.pfnSequenceCallback = &NvdecDecoder::OnSequence;
  params.pfnDecodePicture = &NvdecDecoder::OnDecode;
  params.pfnDisplayPicture = &NvdecDecoder::OnDisplay;
  return CuCheck(nv().cuvidCreateVideoParser(&parser_, &params), "cuvidCreateVideoParser");
}

NvdecDecoder::~NvdecDecoder() {
  // Frames handed on may still be queued for analysis after the decoder is done with the file.
  pool_.WaitUntilAllReturned();
  ScopedContext scoped(ctx_);
  if (parser_) nv().cuvidDestroyVideoParser(parser_);
  if (decoder_) nv().cuvidDestroyDecoder(decoder_);
  if (surfaces_) cu().cuMemFree(surfaces_);
  if (stream_) cu().cuStreamDestroy(stream_);
  if (lock_) nv().cuvidCtxLockDestroy(lock_);
}

Status NvdecDecoder::CreateDecoder(const CUVIDEOFORMAT& format) {
  CUVIDDECODECAPS caps = {};
  caps.eCodecType = format.codec;
  caps.eChromaFormat = format.chroma_format;
  caps.nBitDepthMinus8 = format.bit_depth_luma_minus8;
  VS_RETURN_IF_ERROR(CuCheck(nv().cuvidGetDecoderCaps(&caps), "cuvidGetDecoderCaps"));
  if (!caps.bIsSupported) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("this GPU's NVDEC cannot decode {} {}-bit", VideoCodecName(info_.codec),
                                 format.bit_depth_luma_minus8 + 8));
  }
  if (format.coded_width > caps.nMaxWidth || format.coded_height > caps.nMaxHeight) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("{}x{} exceeds this GPU's NVDEC limit of {}x{}", format.coded_width,
                                 format.coded_height, caps.nMaxWidth, caps.nMaxHeight));
  }
  if (format.chroma_format != cudaVideoChromaFormat_420) {
    return MakeError(StatusCode::kUnsupported, "only 4:2:0 video is supported");
  }
  const int width = format.display_area.right - format.display_area.left;
  const int height = format.display_area.bottom - format.display_area.top;
  if (decoder_) {
    if (width != surface_width_ || height != surface_height_) {
      return MakeError(StatusCode::kUnsupported,
                       fmt::format("resolution changes inside a stream are not supported ({}x{} -> {}x{})",
                                   surface_width_, surface_height_, width, height));
    }
    return Status::Ok();  // same size: a repeated sequence header
  }
  surface_format_ = format.bit_depth_luma_minus8 > 0 ? PixelFormat::kP016 : PixelFormat::kNV12;

  CUVIDDECODECREATEINFO create = {};
  create.CodecType = format.codec;
  create.ChromaFormat = format.chroma_format;
  create.OutputFormat =
      surface_format_ == PixelFormat::kP016 ? cudaVideoSurfaceFormat_P016 : cudaVideoSurfaceFormat_NV12;
  create.bitDepthMinus8 = format.bit_depth_luma_minus8;
  create.DeinterlaceMode =
      format.progressive_sequence ? cudaVideoDeinterlaceMode_Weave : cudaVideoDeinterlaceMode_Adaptive;
  create.ulNumOutputSurfaces = 2;
  create.ulCreationFlags = cudaVideoCreate_PreferCUVID;
  create.ulNumDecodeSurfaces = format.min_num_decode_surfaces + kDisplayDelay;
  create.vidLock = lock_;
  create.ulWidth = format.coded_width;
  create.ulHeight = format.coded_height;
  create.ulMaxWidth = format.coded_width;
  create.ulMaxHeight = format.coded_height;
  create.display_area.left = static_cast<short>(format.display_area.left);
  create.display_area.top = static_cast<short>(format.display_area.top);
  create.display_area.right = static_cast<short>(format.display_area.right);
  create.display_area.bottom = static_cast<short>(format.display_area.bottom);
  create.ulTargetWidth = width;
  create.ulTargetHeight = height;
  VS_RETURN_IF_ERROR(CuCheck(nv().cuvidCreateDecoder(&decoder_, &create), "cuvidCreateDecoder"));

  surface_width_ = width;
  surface_height_ = height;
  const int row = width * BytesPerSample(surface_format_);
  surface_pitch_ = (row + kSurfacePitchAlignment - 1) / kSurfacePitchAlignment * kSurfacePitchAlignment;
  surface_bytes_ = static_cast<size_t>(surface_pitch_) * (height + (height + 1) / 2);
  if (options_.acquire_output) return Status::Ok();  // pictures go to the caller's memory
  return CuCheck(cu().cuMemAlloc(&surfaces_, surface_bytes_ * pool_.slot_count()), "cuMemAlloc (surface pool)");
}

int NvdecDecoder::HandleSequence(CUVIDEOFORMAT* format) {
  Status st = CreateDecoder(*format);
  if (!st.ok()) {
    fatal_ = st;
    return 0;
  }
  return static_cast<int>(format->min_num_decode_surfaces + kDisplayDelay);
}

int NvdecDecoder::HandleDecode(CUVIDPICPARAMS* params) {
  if (!decoder_) {
    fatal_ = MakeError(StatusCode::kCorruptData, "picture data before any sequence header");
    return 0;
  }
  if (params->CurrPicIdx >= 0 && params->CurrPicIdx < static_cast<int>(intra_by_surface_.size())) {
    intra_by_surface_[params->CurrPicIdx] = params->intra_pic_flag != 0;
  }
  CUresult r = nv().cuvidDecodePicture(decoder_, params);
  if (r != CUDA_SUCCESS) {
    ++counters_.decode_errors;
    packet_failed_ = true;
  }
  return 1;
}

int NvdecDecoder::HandleDisplay(CUVIDPARSERDISPINFO* disp) {
  if (!disp) return 1;  // end of stream marker
  Status st = DeliverPicture(*disp);
  if (!st.ok()) {
    fatal_ = st;
    return 0;
  }
  return 1;
}

Status NvdecDecoder::DeliverPicture(const CUVIDPARSERDISPINFO& disp) {
  const int64_t index = display_count_++ + frames_lost_;
  ++counters_.frames_decoded;
  FrameInfo fi;
  fi.stream_id = options_.stream_id;
  fi.pts_seconds = clock_.Seconds(use_packet_times_ ? disp.timestamp : EncodedPacket::kNoTimestamp, index);
  fi.frame_index = options_.sampling.keyframes_only() ? clock_.IndexAt(fi.pts_seconds) : index;
  const bool intra = disp.picture_index >= 0 && disp.picture_index < static_cast<int>(intra_by_surface_.size()) &&
                     intra_by_surface_[disp.picture_index];
  fi.keyframe = intra || options_.sampling.keyframes_only();
  // Decode status is only known once a picture is mapped: while recovering from damage every picture is
  // mapped and checked until an intact intra picture arrives; otherwise unwanted pictures are not mapped.
  const bool was_recovering = recovering_;
  bool wanted = false;
  if (!was_recovering) {
    wanted = sampler_.Keep(fi.frame_index, fi.pts_seconds, fi.keyframe);
    if (!wanted) return Status::Ok();
  }

  CUVIDPROCPARAMS proc = {};
  proc.progressive_frame = disp.progressive_frame;
  proc.second_field = disp.repeat_first_field + 1;
  proc.top_field_first = disp.top_field_first;
  proc.unpaired_field = disp.repeat_first_field < 0;
  proc.output_stream = stream_;
  CUdeviceptr mapped = 0;
  unsigned int mapped_pitch = 0;
  VS_RETURN_IF_ERROR(CuCheck(nv().cuvidMapVideoFrame(decoder_, disp.picture_index, &mapped, &mapped_pitch, &proc),
                             "cuvidMapVideoFrame"));
  CUVIDGETDECODESTATUS decode_status = {};
  bool damaged = nv().cuvidGetDecodeStatus(decoder_, disp.picture_index, &decode_status) == CUDA_SUCCESS &&
                 (decode_status.decodeStatus == cuvidDecodeStatus_Error ||
                  decode_status.decodeStatus == cuvidDecodeStatus_Error_Concealed);
  const bool admitted = recovery_.Admit(damaged, intra, &counters_);
  recovering_ = !admitted;
  if (admitted && was_recovering) wanted = sampler_.Keep(fi.frame_index, fi.pts_seconds, fi.keyframe);
  if (!admitted || !wanted) {
    return CuCheck(nv().cuvidUnmapVideoFrame(decoder_, mapped), "cuvidUnmapVideoFrame");
  }

  SlotLease lease;
  CUdeviceptr luma = 0;
  if (options_.acquire_output) {
    Expected<uint8_t*> output = options_.acquire_output(surface_bytes_);
    if (!output.ok()) {
      (void)CuCheck(nv().cuvidUnmapVideoFrame(decoder_, mapped), "cuvidUnmapVideoFrame");
      return output.status();
    }
    luma = reinterpret_cast<CUdeviceptr>(*output);
  } else {
    lease = SlotLease(&pool_, pool_.Acquire());  // waits while the consumer holds every surface
    luma = surfaces_ + surface_bytes_ * lease.slot();
  }
  CUdeviceptr chroma = luma + static_cast<size_t>(surface_pitch_) * surface_height_;
  const size_t row = static_cast<size_t>(surface_width_) * BytesPerSample(surface_format_);
  // NVDEC's output surface keeps its chroma plane after an even number of luma rows.
  CUdeviceptr mapped_chroma = mapped + static_cast<size_t>(mapped_pitch) * ((surface_height_ + 1) & ~1);
  Status copy_status;
  for (int plane = 0; plane < 2 && copy_status.ok(); ++plane) {
    CUDA_MEMCPY2D copy = {};
    copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.srcDevice = plane == 0 ? mapped : mapped_chroma;
    copy.srcPitch = mapped_pitch;
    copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.dstDevice = plane == 0 ? luma : chroma;
    copy.dstPitch = surface_pitch_;
    copy.WidthInBytes = row;
    copy.Height = plane == 0 ? surface_height_ : (surface_height_ + 1) / 2;
    copy_status = CuCheck(cu().cuMemcpy2DAsync(&copy, stream_), "cuMemcpy2DAsync");
  }
  if (copy_status.ok()) copy_status = CuCheck(cu().cuStreamSynchronize(stream_), "cuStreamSynchronize");
  Status unmap = CuCheck(nv().cuvidUnmapVideoFrame(decoder_, mapped), "cuvidUnmapVideoFrame");
  VS_RETURN_IF_ERROR(copy_status);
  VS_RETURN_IF_ERROR(unmap);

  fi.width = surface_width_;
  fi.height = surface_height_;
  fi.pitch = surface_pitch_;
  fi.format = surface_format_;
  fi.color_space = info_.color_space;
  fi.color_range = info_.color_range;
  DecodedFrame out;
  out.view.info = fi;
  out.view.memory = MemoryKind::kDevice;
  out.view.luma = reinterpret_cast<uint8_t*>(luma);
  out.view.chroma = reinterpret_cast<uint8_t*>(chroma);
  out.lease = std::move(lease);
  ++counters_.frames_delivered;
  return sink_(std::move(out));
}

Status NvdecDecoder::Parse(const CUVIDSOURCEDATAPACKET& packet) {
  packet_failed_ = false;
  CUresult r;
  {
    ScopedContext scoped(ctx_);
    r = nv().cuvidParseVideoData(parser_, const_cast<CUVIDSOURCEDATAPACKET*>(&packet));
  }
  if (!fatal_.ok()) return fatal_;
  if (r != CUDA_SUCCESS) {
    ++counters_.decode_errors;
    return MakeError(StatusCode::kCorruptData, "NVDEC parser rejected a packet: " + CuErrorText(r));
  }
  if (packet_failed_) return MakeError(StatusCode::kCorruptData, "NVDEC failed to decode a picture");
  return Status::Ok();
}

Status NvdecDecoder::Decode(const EncodedPacket& packet) {
  ++counters_.packets;
  if (!times_decided_) {
    use_packet_times_ = packet.pts != EncodedPacket::kNoTimestamp || options_.sampling.keyframes_only();
    times_decided_ = true;
  }
  CUVIDSOURCEDATAPACKET p = {};
  p.payload = packet.data;
  p.payload_size = static_cast<unsigned long>(packet.size);
  int64_t ts = packet.pts != EncodedPacket::kNoTimestamp ? packet.pts : packet.dts;
  if (use_packet_times_ && ts != EncodedPacket::kNoTimestamp) {
    p.flags |= CUVID_PKT_TIMESTAMP;
    p.timestamp = ts;
  }
  if (packet.size == 0) return Status::Ok();
  return Parse(p);
}

Status NvdecDecoder::Flush() {
  CUVIDSOURCEDATAPACKET p = {};
  p.flags = CUVID_PKT_ENDOFSTREAM;
  return Parse(p);
}

}  // namespace

Status NvdecAvailable(int gpu_index) {
  auto ctx = PrimaryContext(gpu_index);
  return ctx.ok() ? Status::Ok() : ctx.status();
}

Expected<std::string> GpuName(int gpu_index) {
  VS_RETURN_IF_ERROR(Driver().status);
  CUdevice device = 0;
  VS_RETURN_IF_ERROR(CuCheck(Driver().cuda->cuDeviceGet(&device, gpu_index), "cuDeviceGet"));
  char name[256] = {};
  VS_RETURN_IF_ERROR(CuCheck(Driver().cuda->cuDeviceGetName(name, sizeof(name), device), "cuDeviceGetName"));
  return std::string(name);
}

Expected<std::unique_ptr<VideoDecoder>> CreateNvdecDecoder(const VideoStreamInfo& info,
                                                           const DecoderOptions& options, FrameSink sink) {
  if (NvCodec(info.codec) == cudaVideoCodec_NumCodecs) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("codec {} is not supported (vidscan decodes h264, hevc and av1)", info.codec_name));
  }
  VS_ASSIGN_OR_RETURN(CUcontext ctx, PrimaryContext(options.gpu_index));
  auto decoder = std::make_unique<NvdecDecoder>(info, options, std::move(sink), ctx);
  VS_RETURN_IF_ERROR(decoder->Init());
  return std::unique_ptr<VideoDecoder>(std::move(decoder));
}

Status CopyDeviceFrameToHost(const FrameView& frame, uint8_t* luma, uint8_t* chroma) {
  const FrameInfo& fi = frame.info;
  VS_ASSIGN_OR_RETURN(CUcontext ctx, PrimaryContext(0));
  ScopedContext scoped(ctx);
  for (int plane = 0; plane < 2; ++plane) {
    CUDA_MEMCPY2D copy = {};
    copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.srcDevice = reinterpret_cast<CUdeviceptr>(plane == 0 ? frame.luma : frame.chroma);
    copy.srcPitch = fi.pitch;
    copy.dstMemoryType = CU_MEMORYTYPE_HOST;
    copy.dstHost = plane == 0 ? luma : chroma;
    copy.dstPitch = plane == 0 ? fi.row_bytes() : fi.chroma_row_bytes();
    copy.WidthInBytes = copy.dstPitch;
    copy.Height = plane == 0 ? fi.height : fi.chroma_height();
    VS_RETURN_IF_ERROR(CuCheck(Driver().cuda->cuMemcpy2D(&copy), "cuMemcpy2D (device frame to host)"));
  }
  return Status::Ok();
}

}  // namespace vidscan
