// What `vidscan run` derives for one video from the job's options, in one place, so that the
// single-process runner and the multi-process workers decode and write each video exactly alike.
#pragma once

#include <string>

#include "core/status.h"
#include "decode/decoder.h"
#include "job/inputs.h"
#include "pipeline/run_job.h"
#include "pipeline/video_output.h"

namespace vidscan {

// The folder a video's results go to: <out>/videos/<key>.
std::string VideoOutputDir(const std::string& output_dir, const std::string& key);

// Output settings of `input` (its folder, its sampling as recorded, the model's name and classes, tracking).
VideoOutputSettings OutputSettingsFor(const VideoInput& input, const LoadedModel& model, const RunOptions& options);

// Decoder settings of `input`: the job's device, surfaces and sampling, or the sampling its manifest line
// gives (an invalid one is the video's error).
Expected<DecoderOptions> DecoderOptionsFor(const VideoInput& input, const RunOptions& options, int stream_id,
                                           int cpu_threads);

// DecodeFile, falling back to the CPU decoder when NVDEC cannot take the stream (AV1 on a GPU without it,
// 4:2:2, > 8K) before it delivered a frame. options.on_open is called once even when the file is opened twice.
FileDecodeReport DecodeVideo(const std::string& path, DecoderOptions options, const FrameSink& sink);

}  // namespace vidscan
