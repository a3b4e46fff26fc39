// NVDEC decoding through nvcuvid, loaded at run time (ffnvcodec's dynlink loader), so one binary runs
// on machines with and without the NVIDIA driver. Frames land as NV12/P016 in a fixed pool of device
// surfaces in the device's primary context, where the CUDA runtime kernels of later stages see them.
#pragma once

#include <memory>
#include <string>

#include "decode/decoder.h"

namespace vidscan {

// Whether the NVIDIA driver, nvcuvid and a GPU are present; the message says what is missing.
Status NvdecAvailable(int gpu_index = 0);
// Name of the GPU, for reports ("NVIDIA H100 80GB HBM3").
Expected<std::string> GpuName(int gpu_index);

Expected<std::unique_ptr<VideoDecoder>> CreateNvdecDecoder(const VideoStreamInfo& info,
                                                           const DecoderOptions& options, FrameSink sink);

// Copies a device frame's visible pixels into host buffers (tightly packed rows): for tests and tools.
Status CopyDeviceFrameToHost(const FrameView& frame, uint8_t* luma, uint8_t* chroma);

}  // namespace vidscan
