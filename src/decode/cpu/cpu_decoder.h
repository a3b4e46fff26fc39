// libavcodec decoding on the CPU into NV12/P016 host surfaces: the fallback without a GPU and the
// reference the NVDEC path must equal bit for bit.
#pragma once

#include <memory>

#include "decode/decoder.h"

namespace vidscan {

Expected<std::unique_ptr<VideoDecoder>> CreateCpuDecoder(const VideoStreamInfo& info,
                                                         const AVCodecParameters* codec_parameters,
                                                         const DecoderOptions& options, FrameSink sink);

}  // namespace vidscan
