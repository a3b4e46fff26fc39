// The supervisor of a multi-process job: starts N decode and M infer workers (ProcessSupervisor), wires
// each decoder's FrameChannel to its infer worker, hands out videos, and keeps the job going when workers
// die.
//
// Fault handling (docs/ipc.md has the reasoning):
// - A dead decoder: its channel and pool names are unlinked, its infer worker drops the channel, and the
//   videos it held are re-queued from their start. It is restarted (new generation, new shm names).
// - A dead infer worker: the decoders feeding it drop their videos and reclaim every slot (the survivor
//   of a two-party channel may reset it alone), the videos are re-queued, and the restarted worker
//   attaches the channels again once they are reset.
// - Blame: a video that was being worked on when a worker died gets a strike. A video with
//   isolate_after_strikes strikes runs alone in its group (its infer worker and the decoders feeding it),
//   so further deaths are its own; at max_attempts strikes it is failed, not retried for ever.
// - The first successful result of a video wins; a later attempt still running is abandoned.
// - At most one attempt at a video is alive in the infer workers at any time: the videos of a dead decoder
//   are held back until its infer worker confirms it dropped them (kChannelDropped) or dies, so a new
//   attempt never writes where an old one still does.
// - Every shm object of the job is unlinked on every exit path; a killed supervisor's objects are removed
//   by the next job (RemoveStaleShm) — its workers die with it (PR_SET_PDEATHSIG).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ipc/job_region.h"
#include "ipc/supervisor.h"

namespace vidscan::ipc {

enum class VideoState : uint8_t { kPending, kRunning, kDone, kFailed };
const char* VideoStateName(VideoState state);

struct JobEvent {
  // kVideoAssigned: an attempt at a video was handed to a decoder (e.g. mark it running in a ledger).
  // kWorkerReady: the worker said hello (set up: e.g. an infer worker has its model loaded and tuned).
  enum class Kind { kWorkerStarted, kWorkerReady, kWorkerExited, kVideoAssigned, kVideoProduced, kVideoFinished };
  Kind kind = Kind::kWorkerStarted;
  WorkerRole role = WorkerRole::kDecode;  // worker events
  int worker = -1;        // worker events: its index; video events: the decoder the attempt ran on
  pid_t pid = 0;
  uint64_t video_id = 0;  // video events
  uint32_t attempt = 0;
  VideoState state = VideoState::kPending;
  std::string detail;     // a death's description, a failure's message
  std::string report;     // kVideoFinished: the consumer's report (VideoResult::report); empty when the
                          // supervisor decided the end (e.g. too many worker deaths)
};

struct MultiProcessOptions {
  std::string tag = "job";  // in the job's shm names: letters, digits, '.', '_'
  int decode_workers = 1;
  int infer_workers = 1;    // decoder d feeds infer worker d % infer_workers; at most decode_workers
  // How to start a worker (argv[0] a path, e.g. /proc/self/exe resolved); the worker's identity goes into
  // its environment (WorkerIdentity), with `worker_env` added.
  std::vector<std::string> worker_argv;
  std::vector<std::pair<std::string, std::string>> worker_env;
  int slots_per_decoder = 8;
  size_t slot_bytes = 0;         // largest frame a slot holds
  int descriptor_capacity = 0;   // per channel; 0: 2 * slots_per_decoder + 8
  int batch_size = 8;
  std::chrono::microseconds max_batch_wait{2000};
  // Assigned at once, so the next one starts without a round trip; 1 once at most two rounds of videos are
  // left, so the job's end is not left to a few decoders with a queue each.
  int max_videos_per_decoder = 2;
  int max_attempts = 3;            // strikes before a video is failed
  // Strikes after which a video runs alone in its group. Not 1: one death (an OOM kill, an operator's
  // kill -9) strikes every video in flight — 16 with 8 decoders — and running each alone would serialise
  // them (measured on an H200: ~50 s at ~1 video per 3 s before full speed resumed). A poison video kills
  // its worker again at its next attempt and is isolated then.
  int isolate_after_strikes = 2;
  RestartPolicy restart;
  std::chrono::milliseconds stop_grace{2000};  // SIGTERM -> SIGKILL at shutdown
  std::chrono::milliseconds timeout{0};        // whole job; 0: none
  // Set (e.g. from a SIGINT/SIGTERM handler) to stop the job early: workers are shut down and every shm
  // object is removed, and the run returns an error. Looked at every 100 ms at least.
  const std::atomic<bool>* cancel = nullptr;
  // Called on the supervisor's thread for every JobEvent (progress, ledger updates, tests).
  std::function<void(const JobEvent&)> observer;
};

struct VideoOutcome {
  uint64_t video_id = 0;
  VideoState state = VideoState::kPending;
  int attempts = 0;  // attempts started
  int strikes = 0;   // worker deaths blamed on it
  int64_t frames = 0;  // frames the consumer received in the successful attempt
  Status status;       // why it failed
  std::string report;  // the consumer's report of the attempt that ended it (JobEvent::report)
};

struct MultiProcessReport {
  std::vector<VideoOutcome> videos;  // in input order
  int worker_deaths = 0;
  int worker_restarts = 0;
  int64_t frames = 0;
  int64_t producer_waits = 0;         // times a decoder found no free slot (back-pressure at work)
  double producer_wait_seconds = 0;
  double wall_seconds = 0;
  std::vector<std::string> deaths;    // each death described
  std::vector<std::string> stale_shm_removed;  // left by killed earlier jobs
};

// Runs the job to the end. Per-video failures are in the report; an error means the job itself could not
// run (no job region, workers that cannot be started) or hit its timeout. Call from the main thread (see
// ProcessSupervisor about PR_SET_PDEATHSIG).
Expected<MultiProcessReport> RunMultiProcessJob(std::span<const uint64_t> video_ids, const MultiProcessOptions& options);

}  // namespace vidscan::ipc
