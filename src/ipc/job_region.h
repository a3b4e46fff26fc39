// The job's control plane in one shared-memory object the supervisor creates ("<job prefix>ctl") and every
// worker maps: the job's geometry, the supervisor's doorbell, and per worker a mailbox — its doorbell, a
// command ring (supervisor -> worker) and an event ring (worker -> supervisor).
//
// Control traffic is a few messages per video, so it could have used sockets; it shares the frame path's
// rings and doorbells instead so that each process sleeps on exactly one futex for everything it reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/shm_region.h"

namespace vidscan::ipc {

enum class WorkerRole : uint8_t { kDecode = 1, kInfer = 2 };
const char* WorkerRoleName(WorkerRole role);

// Fixed for the job; written by the supervisor before any worker starts.
struct JobGeometry {
  uint32_t decode_workers = 1;
  uint32_t infer_workers = 1;
  uint32_t slots_per_decoder = 8;
  uint32_t descriptor_capacity = 32;  // descriptors per channel ring
  uint64_t slot_bytes = 0;
  uint32_t batch_size = 8;            // frames an infer worker gathers before running them
  uint32_t max_batch_wait_us = 2000;  // ... or how long it waits for more once it has some
};

enum class ControlType : uint32_t {
  // supervisor -> decode worker
  kAssignVideo = 1,   // video_id, attempt
  kAbandonVideo,      // video_id, attempt: stop it, tell the consumer (kVideoAbandoned)
  kResetChannel,      // the consumer died: drop every video, reclaim every slot, then kChannelReset
  // supervisor -> infer worker
  kAttachChannel = 16,  // peer = decoder index, generation: open that decoder's channel and pool
  kDropChannel,         // peer, generation: that decoder died; drop its videos, unmap
  // supervisor -> any worker
  kShutdown = 32,
  // worker -> supervisor
  kHello = 64,        // generation: the worker is up (a decoder's channel exists)
  kChannelReset,      // generation: done resetting after kResetChannel
  kChannelAttached,   // peer, generation
  kVideoProduced,     // video_id, attempt, frames, waits, wait_us, status: the decoder is done with it
  kVideoDone,         // video_id, attempt, frames, status, text: the consumer committed (or failed) it
  kChannelDropped,    // peer, generation: done with kDropChannel; nothing of that decoder's videos is left
  kVideoReport,       // video_id, attempt, frames = byte offset, text_bytes: a chunk of the consumer's report
                      // on the video (VideoResult::report); the kVideoDone it belongs to follows
};

// One control message; 128 bytes.
struct ControlMessage {
  ControlType type = ControlType::kHello;
  uint32_t peer = 0;
  uint32_t generation = 0;
  uint32_t attempt = 0;
  uint64_t video_id = 0;
  int64_t frames = 0;
  int64_t waits = 0;      // kVideoProduced: times the producer found no free slot (back-pressure)
  int64_t wait_us = 0;    // kVideoProduced: time it spent waiting for one
  int32_t status_code = 0;
  uint32_t text_bytes = 0;  // kVideoReport: bytes of `text` in use
  char text[72] = {};     // kVideoDone: short error text; kVideoReport: a chunk of the report
};
static_assert(std::is_trivially_copyable_v<ControlMessage>);
static_assert(sizeof(ControlMessage) == 128);

void SetText(ControlMessage& message, const std::string& text);
std::string TextOf(const ControlMessage& message);

struct Mailbox {
  Doorbell* bell = nullptr;  // the worker sleeps here
  SpscRing<ControlMessage> commands;  // supervisor -> worker
  SpscRing<ControlMessage> events;    // worker -> supervisor
  std::atomic<uint32_t>* starts = nullptr;  // times a worker started in this mailbox: its generation
};

class JobRegion {
 public:
  static constexpr uint32_t kCommandCapacity = 256;
  static constexpr uint32_t kEventCapacity = 256;

  // Supervisor: creates "<prefix>ctl" (owning the name) for `geometry`.
  static Expected<JobRegion> Create(const std::string& prefix, const JobGeometry& geometry);
  // Worker: maps the job a supervisor created.
  static Expected<JobRegion> Open(const std::string& name);

  const JobGeometry& geometry() const { return geometry_; }
  // "/vidscan-<uid>-<pid>-<tag>-": channel and pool names extend it.
  const std::string& prefix() const { return prefix_; }
  const std::string& name() const { return region_.name(); }
  pid_t supervisor_pid() const { return supervisor_pid_; }
  Doorbell* supervisor_bell() const;
  Expected<Mailbox> mailbox(WorkerRole role, int index) const;
  // Which infer worker a decoder feeds: decoders are spread evenly over the infer workers.
  int ConsumerOf(int decoder) const { return decoder % static_cast<int>(geometry_.infer_workers); }

  std::string ChannelName(int decoder, uint32_t generation) const;
  std::string PoolName(int decoder, uint32_t generation) const;

  ShmRegion& region() { return region_; }

 private:
  JobRegion() = default;
  size_t MailboxOffset(int slot) const;

  ShmRegion region_;
  JobGeometry geometry_;
  std::string prefix_;
  pid_t supervisor_pid_ = 0;
};

}  // namespace vidscan::ipc
