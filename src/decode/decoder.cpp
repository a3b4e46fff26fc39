#include "decode/decoder.h"

#include <fmt/format.h>

#include "decode/cpu/cpu_decoder.h"
#include "decode/nvdec/nvdec_decoder.h"

namespace vidscan {

Expected<std::unique_ptr<VideoDecoder>> VideoDecoder::Create(const VideoStreamInfo& info,
                                                             const AVCodecParameters* codec_parameters,
                                                             const DecoderOptions& options, FrameSink sink) {
  if (info.codec == VideoCodec::kOther) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("codec {} is not supported (vidscan decodes h264, hevc and av1)", info.codec_name));
  }
  if (info.chroma_format_idc != 1) {
    const char* name = info.chroma_format_idc == 0 ? "4:0:0" : info.chroma_format_idc == 2 ? "4:2:2" : "4:4:4";
    return MakeError(StatusCode::kUnsupported, fmt::format("chroma format {} is not supported (4:2:0 only)", name));
  }
  if (info.bit_depth > 12) {
    return MakeError(StatusCode::kUnsupported, fmt::format("{}-bit video is not supported", info.bit_depth));
  }
  if (options.surface_pool_size < 1) {
    return MakeError(StatusCode::kInvalidArgument, "the surface pool needs at least one surface");
  }
  if (options.device == DecoderDevice::kGpu) return CreateNvdecDecoder(info, options, std::move(sink));
  return CreateCpuDecoder(info, codec_parameters, options, std::move(sink));
}

}  // namespace vidscan
