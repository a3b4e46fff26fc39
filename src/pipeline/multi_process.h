// `vidscan run --workers decode=N,infer=M`: the run pipeline split over processes (issue 7).
//
//   supervisor (the `vidscan run` process)          RunMultiProcess
//     ledger, progress, job summary; ipc::RunMultiProcessJob hands out videos and restarts dead workers
//   N decode workers (`vidscan` started with VIDSCAN_IPC_ROLE=decode)   RunPipelineWorker
//     DecodeVideo (NVDEC or libavcodec) -> each sampled frame into a slot of the worker's pool (host shared
//     memory; device memory exported with CUDA IPC when the analysis runs on the GPU) -> a descriptor
//   M infer workers (VIDSCAN_IPC_ROLE=infer)                            RunPipelineWorker
//     batches across their decoders -> Analyzer on the frames in place -> VideoOutput per video (ByteTrack,
//     writers) on output threads -> the video's verdict back to the supervisor
//
// Per-video outputs are byte-identical to the single-process mode: the same decoder settings
// (DecoderOptionsFor), the same frame layout in the slots (the decoder's pitch and plane offsets), a batch
// composition that does not change results (see analyzer.h), and the same VideoOutput.
//
// Workers learn the job from a specification the supervisor writes into a shared-memory object
// (kEnvRunSpec names it; removed with the job, or by the next job if the supervisor was killed). A data
// message at a video's start carries the stream's facts, one at its end the decoder's full report, so the
// infer worker writes summary.json exactly as the single-process mode does; the infer worker's report on
// the video (verdict, frames, warnings, its stage times) reaches the supervisor, which updates the ledger.
#pragma once

#include <cstddef>
#include <span>

#include "core/status.h"
#include "job/inputs.h"
#include "job/ledger.h"
#include "pipeline/analyzer.h"
#include "pipeline/run_job.h"

namespace vidscan {

// Names the shared-memory object holding the job's specification, in a worker's environment.
inline constexpr const char* kEnvRunSpec = "VIDSCAN_RUN_SPEC";

// Runs `videos` (planned by the ledger, which it marks running/done/failed as the workers report) in
// worker processes. Fails for what stops the whole job: workers that cannot start, a cancel
// (options.cancel), the specification that cannot be shared.
Expected<JobReport> RunMultiProcess(std::span<const VideoInput> videos, const LoadedModel& model,
                                    const RunOptions& options, JobLedger& ledger);

// The slot size the job's pools need: the largest frame of `videos` as the decoders lay it out (rows
// padded to 256 bytes, chroma after the luma), read from the stream headers (containers opened in
// parallel). Videos that cannot be opened are left out: they fail when decoded. At least 64 KiB.
size_t SlotBytesForVideos(std::span<const VideoInput> videos);

// The body of a `vidscan` process started as a worker (ipc::IsWorkerProcess()); returns its exit code.
int RunPipelineWorker();

}  // namespace vidscan
