// The worker processes of a multi-process job: their main loops, with the real work plugged in.
//
//   decode worker: creates its slot pool and its FrameChannel, then for each video the supervisor
//     assigns: kVideoBegin, VideoProducer::Produce (frames written into free slots), kVideoEnd.
//   infer worker: attaches the channels of the decoders that feed it (JobRegion::ConsumerOf), gathers
//     frames from all of them into batches (batch_size, or max_batch_wait after the first), hands each
//     batch to VideoConsumer::ConsumeFrames (or, pipelined, StartBatch while an earlier batch is still on
//     the GPU, then FinishBatch), returns the slots, and commits a video once the batches holding its
//     last frames are finished.
//
// A worker learns who it is from its environment (WorkerIdentity), sleeps on its mailbox doorbell, and
// exits when the supervisor says kShutdown, or with a failure code when its supervisor is gone or its
// stage fails in a way only a restart can fix (the supervisor then restarts it and re-queues its videos).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/frame.h"
#include "core/status.h"
#include "ipc/frame_descriptor.h"
#include "ipc/job_region.h"
#include "ipc/slot_memory.h"

namespace vidscan::ipc {

// Environment variables the supervisor sets for a worker.
inline constexpr const char* kEnvJob = "VIDSCAN_IPC_JOB";      // the job region's shm name
inline constexpr const char* kEnvRole = "VIDSCAN_IPC_ROLE";    // "decode" | "infer"
inline constexpr const char* kEnvIndex = "VIDSCAN_IPC_INDEX";  // the worker's index in its role

struct WorkerIdentity {
  std::string job;
  WorkerRole role = WorkerRole::kDecode;
  int index = 0;

  static Expected<WorkerIdentity> FromEnvironment();
  std::vector<std::pair<std::string, std::string>> Environment() const;
};

// Whether this process was started as a worker (VIDSCAN_IPC_ROLE is set): a main() dispatches on it.
bool IsWorkerProcess();

// Exit codes of a worker.
inline constexpr int kWorkerExitOk = 0;            // told to shut down
inline constexpr int kWorkerExitSetupFailed = 2;   // could not join the job
inline constexpr int kWorkerExitStageFailed = 3;   // its stage failed in a way a restart may fix
inline constexpr int kWorkerExitOrphaned = 4;      // its supervisor is gone

// ---- decode side ----

struct SlotBuffer {
  int index = -1;
  std::byte* data = nullptr;  // host or device address of the slot in this process
  size_t bytes = 0;
};

// What a VideoProducer writes frames through. Every call may fail with kUnavailable when the video was
// taken away or the job is stopping: return from Produce promptly then.
class FrameWriter {
 public:
  virtual ~FrameWriter() = default;
  // A free slot to write the next frame into; blocks while every slot is in flight (back-pressure).
  virtual Expected<SlotBuffer> AcquireSlot() = 0;
  // Sends the frame written into `slot`. `cuda_event_handle` (64 bytes, a cudaIpcEventHandle_t recorded
  // after the writes) is what the consumer waits on before reading; nullptr for host memory.
  virtual Status SendFrame(const SlotBuffer& slot, const FrameInfo& info, uint32_t chroma_offset,
                           const void* cuda_event_handle = nullptr) = 0;
  // Sends a data message about the current video to its consumer (VideoConsumer::VideoData), in order with
  // the frames: what the stream turned out to be, the decoder's full report, ... At most kMaxVideoDataBytes;
  // it travels in descriptor-sized chunks through the same ring as the frames.
  virtual Status SendVideoData(std::string_view data) = 0;
  virtual MemoryKind memory() const = 0;
};

class VideoProducer {
 public:
  virtual ~VideoProducer() = default;
  // Produces video `video_id` from its first frame, in order. The returned status is the video's (an
  // error ends it as failed; it is not retried). Called again for the same video after a re-queue.
  virtual Status Produce(uint64_t video_id, FrameWriter& out) = 0;
};

struct DecodeWorkerOptions {
  // Creates the pool this worker exports; default: a HostSlotPool named `shm_name`.
  std::function<Expected<std::unique_ptr<SlotMemory>>(const std::string& shm_name, int slot_count, size_t slot_bytes)>
      create_pool;
};

// Runs a decode worker until shutdown; returns the process exit code.
int RunDecodeWorker(VideoProducer& producer, const DecodeWorkerOptions& options = {});

// ---- infer side ----

struct ReceivedFrame {
  FrameDescriptor descriptor;
  FrameView view;    // the frame in place in its producer's pool
  int decoder = -1;  // which decode worker's pool
  SlotMemory* pool = nullptr;  // that pool (valid during ConsumeFrames), e.g. for WriteDoneEvent
};

// What a consumer makes of a video at its end.
struct VideoResult {
  Status status;       // the video's final status
  std::string report;  // for the supervisor, as it is (JobEvent::report); at most kMaxVideoReportBytes
};
inline constexpr size_t kMaxVideoReportBytes = size_t{64} << 10;

class VideoConsumer {
 public:
  virtual ~VideoConsumer() = default;
  // A video (this attempt at it) starts. An error fails the video; its frames are then skipped.
  virtual Status BeginVideo(uint64_t video_id, uint32_t attempt) = 0;
  // A data message the producer sent (FrameWriter::SendVideoData), whole. Every frame of the video sent
  // before it has been through ConsumeFrames. An error fails the video; its later frames are skipped.
  // The default ignores it.
  virtual Status VideoData(uint64_t video_id, uint32_t attempt, std::string_view data);
  // A batch of frames, possibly from several videos, each video's in order. The slots go back to their
  // producers when this returns: finish reading them first. An error is fatal for the worker (it is
  // restarted and its videos re-queued): report per-video problems through EndVideo instead.
  virtual Status ConsumeFrames(std::span<const ReceivedFrame> frames) = 0;
  // Pipelining (optional). A consumer whose batches_in_flight() is K > 1 gets its batches through
  // StartBatch, which may return before the frames are read (e.g. once the GPU work is queued), and
  // finishes them oldest first in FinishBatch; at most K are started and not finished. A batch's slots go
  // back to their producers only after its FinishBatch, or once BatchesDoneReading counts it, so its frames
  // stay valid until then. EndVideo comes only after FinishBatch of every batch holding a frame of the video; VideoData may arrive while
  // such batches are started and not finished. AbandonVideo comes after every started batch finished.
  // The defaults are the plain mode: StartBatch is ConsumeFrames, FinishBatch has nothing to do.
  virtual int batches_in_flight() const { return 1; }
  // Early slot return (optional, for a pipelined consumer): how many of the oldest started, unfinished
  // batches no longer read their frames (e.g. the GPU's preprocess kernel has read them). Their slots go
  // back to the producers then, not at FinishBatch, so decoders are not starved of slots while a batch is
  // still being inferred. The worker asks each pass and every millisecond while such a batch is pending;
  // it must not block. The default, nullopt: not known, a batch's frames are read until its FinishBatch.
  virtual std::optional<int> BatchesDoneReading() { return std::nullopt; }
  virtual Status StartBatch(std::span<const ReceivedFrame> frames) { return ConsumeFrames(frames); }
  virtual Status FinishBatch() { return Status::Ok(); }
  // The producer finished the video with `producer_status` (its message cut to a descriptor's 112 bytes:
  // send the whole story as data if it matters); commit its outputs.
  virtual VideoResult EndVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status) = 0;
  // Committing in the background (optional). The worker calls this instead of EndVideo; a consumer whose
  // commit is slow (outputs written, closed and renamed) may return at once and call `done` later, exactly
  // once, from any thread. Meanwhile the worker goes on gathering and starting batches of other videos
  // (a synchronous commit stalls the GPU: with identical videos every decoder ends one at the same moment);
  // it reports the video to the supervisor once `done` ran, and waits for every commit in progress before
  // it confirms a dropped channel or exits. The default commits synchronously through EndVideo.
  using CommitDone = std::function<void(VideoResult)>;
  virtual void CommitVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status, CommitDone done) {
    done(EndVideo(video_id, attempt, producer_status));
  }
  // Drop everything of this attempt (no output): the video was re-queued, its producer died, or BeginVideo
  // or VideoData failed it. When this returns nothing of the attempt may remain: the supervisor starts the
  // next attempt, possibly in another process, once it knows the attempt was dropped.
  virtual void AbandonVideo(uint64_t video_id, uint32_t attempt) = 0;
};

struct InferWorkerOptions {
  // Maps a producer's pool; default: HostSlotPool::Open for host pools.
  std::function<Expected<std::unique_ptr<SlotMemory>>(const PoolLocator& locator)> open_pool;
};

// Runs an infer worker until shutdown; returns the process exit code.
int RunInferWorker(VideoConsumer& consumer, const InferWorkerOptions& options = {});

}  // namespace vidscan::ipc
