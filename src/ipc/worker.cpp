#include "ipc/worker.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ipc/frame_channel.h"
#include "ipc/host_slot_pool.h"

namespace vidscan::ipc {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a worker sleeps before looking whether its supervisor is still there. Commands ring the
// doorbell, so this bounds only the reaction to an unannounced supervisor death.
constexpr milliseconds kIdleWait{200};
// How often an infer worker asks its consumer whether started batches have been read (ReadPoll).
constexpr milliseconds kReadPoll{1};

struct Assignment {
  uint64_t video_id = 0;
  uint32_t attempt = 0;
};

// Shared by both roles: identity, mailbox, events, and the supervisor-alive check.
class WorkerBase {
 protected:
  Status Join(WorkerRole role) {
    VS_ASSIGN_OR_RETURN(identity_, WorkerIdentity::FromEnvironment());
    if (identity_.role != role) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("started as a {} worker, not {}", WorkerRoleName(identity_.role), WorkerRoleName(role)));
    }
    VS_ASSIGN_OR_RETURN(job_, JobRegion::Open(identity_.job));
    VS_ASSIGN_OR_RETURN(mailbox_, job_->mailbox(role, identity_.index));
    // Mailboxes are used by one worker at a time (a restart follows a reaped death), so the count of
    // starts is this worker's generation: it makes a restarted decoder's shm names new.
    generation_ = mailbox_.starts->fetch_add(1) + 1;
    name_ = fmt::format("{}-{}", WorkerRoleName(role), identity_.index);
    return Status::Ok();
  }

  void CheckSupervisor() const {
    if (getppid() != job_->supervisor_pid()) {
      spdlog::error("{}: the supervisor (pid {}) is gone; exiting", name_, job_->supervisor_pid());
      std::_Exit(kWorkerExitOrphaned);
    }
  }

  void SendEvent(const ControlMessage& message) {
    while (mailbox_.events.Push(message, kIdleWait) == RingWait::kTimedOut) CheckSupervisor();
  }

  WorkerIdentity identity_;
  std::optional<JobRegion> job_;
  Mailbox mailbox_;
  uint32_t generation_ = 0;
  std::string name_;
};

// ------------------------------------------------------------------------------------------------
// Decode worker

class DecodeWorker final : public WorkerBase, public FrameWriter {
 public:
  DecodeWorker(VideoProducer& producer, const DecodeWorkerOptions& options) : producer_(producer), options_(options) {}

  int Run() {
    if (Status joined = Setup(); !joined.ok()) {
      spdlog::error("decode worker: {}", joined.ToString());
      return kWorkerExitSetupFailed;
    }
    ControlMessage hello;
    hello.type = ControlType::kHello;
    hello.generation = generation_;
    SendEvent(hello);
    while (!shutdown_) {
      uint32_t armed = mailbox_.bell->Arm();
      PollCommands();
      if (shutdown_) break;
      if (reset_pending_) {
        Reset();
        continue;
      }
      if (!queue_.empty()) {
        Assignment next = queue_.front();
        queue_.pop_front();
        RunVideo(next);
        continue;
      }
      mailbox_.bell->Wait(armed, kIdleWait);
      CheckSupervisor();
    }
    return kWorkerExitOk;
  }

  // FrameWriter
  Expected<SlotBuffer> AcquireSlot() override {
    auto start = Clock::now();
    bool waited = false;
    std::optional<int> slot;
    if (!stash_.empty()) {
      slot = stash_.back();
      stash_.pop_back();
    }
    while (!slot) {
      uint32_t armed = mailbox_.bell->Arm();
      PollCommands();
      if (Stopping(true)) return StopStatus();
      slot = channel_->TryAcquireSlot();
      if (slot) break;
      waited = true;
      mailbox_.bell->Wait(armed, kIdleWait);
      CheckSupervisor();
    }
    if (waited) {
      ++waits_;
      wait_us_ += std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    }
    held_.insert(*slot);
    return SlotBuffer{*slot, pool_->slot(*slot), pool_->slot_bytes()};
  }

  Status SendFrame(const SlotBuffer& slot, const FrameInfo& info, uint32_t chroma_offset,
                   const void* cuda_event_handle) override {
    if (!held_.count(slot.index)) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{}: slot {} was not acquired", name_, slot.index));
    }
    FrameDescriptor d = MakeFrameDescriptor(current_.video_id, current_.attempt, slot.index, info, chroma_offset);
    if (cuda_event_handle) {
      std::memcpy(d.cuda_event_handle, cuda_event_handle, sizeof(d.cuda_event_handle));
      d.has_cuda_event = 1;
    }
    if (Status valid = ValidateDescriptor(d, pool_->slot_count(), pool_->slot_bytes()); !valid.ok()) return valid;
    VS_RETURN_IF_ERROR(Send(d, true));
    held_.erase(slot.index);
    ++frames_;
    return Status::Ok();
  }

  Status SendVideoData(std::string_view data) override {
    if (!in_video_) return MakeError(StatusCode::kInvalidArgument, fmt::format("{}: video data outside a video", name_));
    if (data.size() > kMaxVideoDataBytes) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("{}: {} bytes of video data; at most {}", name_, data.size(), kMaxVideoDataBytes));
    }
    size_t offset = 0;
    do {
      const std::string_view chunk = data.substr(offset, kDescriptorMessageBytes);
      const bool last = offset + chunk.size() == data.size();
      VS_RETURN_IF_ERROR(Send(MakeVideoData(current_.video_id, current_.attempt, offset, chunk, last), true));
      offset += chunk.size();
    } while (offset < data.size());
    return Status::Ok();
  }

  MemoryKind memory() const override { return pool_->memory(); }

 private:
  Status Setup() {
    VS_RETURN_IF_ERROR(Join(WorkerRole::kDecode));
    const JobGeometry& g = job_->geometry();
    const std::string pool_name = job_->PoolName(identity_.index, generation_);
    if (options_.create_pool) {
      VS_ASSIGN_OR_RETURN(pool_, options_.create_pool(pool_name, static_cast<int>(g.slots_per_decoder), g.slot_bytes));
    } else {
      VS_ASSIGN_OR_RETURN(pool_, HostSlotPool::Create(pool_name, static_cast<int>(g.slots_per_decoder), g.slot_bytes));
    }
    VS_ASSIGN_OR_RETURN(Mailbox consumer, job_->mailbox(WorkerRole::kInfer, job_->ConsumerOf(identity_.index)));
    FrameChannel::Bells bells{consumer.bell, mailbox_.bell};
    VS_ASSIGN_OR_RETURN(channel_, FrameChannel::Create(job_->ChannelName(identity_.index, generation_), pool_->locator(),
                                                       g.descriptor_capacity, bells));
    return Status::Ok();
  }

  void PollCommands() {
    while (std::optional<ControlMessage> command = mailbox_.commands.TryPop()) {
      switch (command->type) {
        case ControlType::kAssignVideo:
          queue_.push_back({command->video_id, command->attempt});
          break;
        case ControlType::kAbandonVideo:
          if (in_video_ && current_.video_id == command->video_id && current_.attempt == command->attempt) {
            abandon_current_ = true;
          } else {
            std::erase_if(queue_, [&](const Assignment& a) {
              return a.video_id == command->video_id && a.attempt == command->attempt;
            });
          }
          break;
        case ControlType::kResetChannel:
          reset_pending_ = true;
          break;
        case ControlType::kShutdown:
          shutdown_ = true;
          break;
        default:
          spdlog::warn("{}: ignoring control message {}", name_, static_cast<int>(command->type));
      }
    }
  }

  // Whether the current video must stop: taken away (unless `for_frames` is false: the abandon marker
  // itself must still go out), consumer dead, or job stopping.
  bool Stopping(bool for_frames) const { return reset_pending_ || shutdown_ || (for_frames && abandon_current_); }
  Status StopStatus() const {
    return MakeError(StatusCode::kUnavailable, reset_pending_ || shutdown_ ? "the worker is told to stop"
                                                                           : "the supervisor took the video away");
  }

  // Sends one descriptor, waiting for ring space while reading commands.
  Status Send(const FrameDescriptor& d, bool for_frames) {
    for (;;) {
      uint32_t armed = mailbox_.bell->Arm();
      PollCommands();
      if (Stopping(for_frames)) return StopStatus();
      if (channel_->TrySend(d)) return Status::Ok();
      mailbox_.bell->Wait(armed, kIdleWait);
      CheckSupervisor();
    }
  }

  void RunVideo(const Assignment& video) {
    current_ = video;
    in_video_ = true;
    abandon_current_ = false;
    frames_ = waits_ = wait_us_ = 0;
    Status status = Send(MakeVideoBegin(video.video_id, video.attempt), true);
    if (status.ok()) status = producer_.Produce(video.video_id, *this);
    // Slots acquired and never sent are free again.
    stash_.insert(stash_.end(), held_.begin(), held_.end());
    held_.clear();
    bool ended = false;
    if (!Stopping(false)) {
      if (abandon_current_) {
        ended = Send(MakeVideoAbandoned(video.video_id, video.attempt), false).ok();
      } else {
        ended = Send(MakeVideoEnd(video.video_id, video.attempt, status), false).ok();
      }
    }
    in_video_ = false;
    if (shutdown_) return;
    ControlMessage produced;
    produced.type = ControlType::kVideoProduced;
    produced.video_id = video.video_id;
    produced.attempt = video.attempt;
    produced.frames = frames_;
    produced.waits = waits_;
    produced.wait_us = wait_us_;
    produced.generation = generation_;
    if (!ended || abandon_current_) {
      produced.status_code = static_cast<int32_t>(StatusCode::kUnavailable);
      SetText(produced, "abandoned");
    } else {
      produced.status_code = static_cast<int32_t>(status.code());
      SetText(produced, status.message());
    }
    SendEvent(produced);
  }

  void Reset() {
    channel_->ReclaimAfterConsumerDeath();
    stash_.clear();
    held_.clear();
    queue_.clear();
    reset_pending_ = false;
    ControlMessage done;
    done.type = ControlType::kChannelReset;
    done.generation = generation_;
    SendEvent(done);
  }

  VideoProducer& producer_;
  const DecodeWorkerOptions& options_;
  std::unique_ptr<SlotMemory> pool_;
  std::optional<FrameChannel> channel_;
  std::deque<Assignment> queue_;
  Assignment current_;
  bool in_video_ = false;
  bool abandon_current_ = false;
  bool reset_pending_ = false;
  bool shutdown_ = false;
  std::vector<int> stash_;  // free slots taken from the ring and not used
  std::set<int> held_;      // acquired by the producer, not yet sent
  int64_t frames_ = 0, waits_ = 0, wait_us_ = 0;
};

// ------------------------------------------------------------------------------------------------
// Infer worker

class InferWorker final : public WorkerBase {
 public:
  InferWorker(VideoConsumer& consumer, const InferWorkerOptions& options) : consumer_(consumer), options_(options) {}
  // A commit's completion calls back into this object: none may still be running when it goes (an exit
  // on a failure does not wait for them on its way out).
  ~InferWorker() {
    std::unique_lock lock(commits_mutex_);
    commits_changed_.wait(lock, [&] { return commits_in_progress_ == 0; });
  }

  int Run() {
    if (Status joined = Join(WorkerRole::kInfer); !joined.ok()) {
      spdlog::error("infer worker: {}", joined.ToString());
      return kWorkerExitSetupFailed;
    }
    const JobGeometry& g = job_->geometry();
    batch_size_ = g.batch_size;
    max_batch_wait_ = std::chrono::microseconds(g.max_batch_wait_us);
    ControlMessage hello;
    hello.type = ControlType::kHello;
    hello.generation = generation_;
    SendEvent(hello);

    while (!shutdown_) {
      uint32_t armed = mailbox_.bell->Arm();
      PollCommands();
      if (shutdown_) break;
      ReportCommitted();
      bool received = false;
      // Weighted round robin over the channels (deficit round robin: each pass a channel earns its weight
      // in credit and takes a descriptor per whole credit; an empty channel keeps none). The weights run
      // from 1 to 2 over the channels, so no decoder starves, yet decoders that all have frames ready (the
      // GPU is the bottleneck) advance at different speeds. With equal shares, decoders of videos of one
      // length (a benchmark's copies, a camera archive cut into 10-minute files) advance in lockstep and
      // all set up their next video at the same moment, leaving the GPU without frames (H200, decode=8:
      // ~0.45 s at the first switch).
      // The turn carries over from one batch to the next (a channel whose turn a full batch cut short goes
      // on with the credit it has left), or every batch would begin with the first channel.
      for (bool progress = true; progress && batch_.size() < batch_size_;) {
        progress = false;
        for (size_t k = 0; k < channels_.size() && batch_.size() < batch_size_; ++k) {
          if (turn_ >= channels_.size()) turn_ = 0, turn_started_ = false;
          Attached& channel = *channels_[turn_];
          if (!turn_started_) channel.credit += ChannelWeight(turn_);
          turn_started_ = true;
          while (channel.credit >= 1 && batch_.size() < batch_size_) {
            std::optional<FrameDescriptor> d = channel.channel->TryReceive();
            if (!d) {
              channel.credit = 0;
              break;
            }
            channel.credit -= 1;
            progress = received = true;
            if (!Handle(channel, *d)) return kWorkerExitStageFailed;
          }
          if (batch_.size() >= batch_size_ && channel.credit >= 1) break;  // its turn goes on next time
          ++turn_;
          turn_started_ = false;
        }
      }
      if (stage_failed_) return kWorkerExitStageFailed;
      if (!ReturnReadSlots()) return kWorkerExitStageFailed;
      const auto batch_deadline = batch_started_ + max_batch_wait_;
      if (batch_.size() >= batch_size_ || (!batch_.empty() && Clock::now() >= batch_deadline)) {
        if (!StartBatch()) return kWorkerExitStageFailed;
        continue;
      }
      if (received) continue;
      if (batch_.empty() && !in_flight_.empty()) {
        // Nothing new came: the batch on the GPU is finished once the next one had max_batch_wait to
        // start gathering behind it; its slots may be what the decoders are waiting for.
        const auto finish_at = last_start_ + max_batch_wait_;
        if (Clock::now() >= finish_at) {
          if (!FinishOldest()) return kWorkerExitStageFailed;
        } else {
          mailbox_.bell->Wait(armed, ReadPoll(finish_at) - Clock::now());
        }
        continue;
      }
      if (!batch_.empty()) {
        mailbox_.bell->Wait(armed, ReadPoll(batch_deadline) - Clock::now());
      } else {
        mailbox_.bell->Wait(armed, kIdleWait);
        CheckSupervisor();
      }
    }
    if (!FinishAll()) spdlog::warn("{}: batches in flight at shutdown did not finish", name_);
    WaitForCommits();  // a video committed now is done, not re-run by the next job
    for (const auto& entry : videos_) consumer_.AbandonVideo(entry.first.first, entry.first.second);
    return kWorkerExitOk;
  }

 private:
  struct Attached {
    int decoder = -1;
    uint32_t generation = 0;
    std::optional<FrameChannel> channel;
    std::unique_ptr<SlotMemory> pool;
    std::optional<uint64_t> next_sequence;
    std::string data;  // the kVideoData message being assembled
    std::pair<uint64_t, uint32_t> data_video{0, 0};
    double credit = 0;  // weighted round robin (ChannelWeight)
  };

  // The share of channel i of n: from 1 (the first) to 2 (the last).
  double ChannelWeight(size_t i) const {
    return channels_.size() < 2 ? 1.0 : 1.0 + static_cast<double>(i) / static_cast<double>(channels_.size() - 1);
  }
  // A video's commit, finished, waiting to be reported by the main thread.
  struct Committed {
    std::pair<uint64_t, uint32_t> key;
    int decoder = -1;
    int64_t frames = 0;
    VideoResult result;
  };
  struct ActiveVideo {
    int decoder = -1;
    Status failed;  // BeginVideo's error: the video's frames are skipped and this is its result
    int64_t frames = 0;
  };
  using VideoKey = std::pair<uint64_t, uint32_t>;  // (video id, attempt)
  // A batch handed to the consumer and not finished yet; serials count batches from 0.
  struct StartedBatch {
    uint64_t serial = 0;
    std::vector<ReceivedFrame> frames;
    bool slots_returned = false;  // early, once the consumer had read them (BatchesDoneReading)
  };
  // A video whose producer ended it while some of its frames were still waiting or in flight: it is
  // committed once batch `barrier` is finished.
  struct PendingEnd {
    VideoKey key;
    Status producer_status;
    int decoder = -1;
    uint64_t barrier = 0;
  };

  void PollCommands() {
    while (std::optional<ControlMessage> command = mailbox_.commands.TryPop()) {
      switch (command->type) {
        case ControlType::kAttachChannel:
          Attach(static_cast<int>(command->peer), command->generation);
          break;
        case ControlType::kDropChannel: {
          Drop(static_cast<int>(command->peer), command->generation);
          // The supervisor holds the dropped videos back until this: their next attempts may write where
          // these did, so none may start while this worker still has one open.
          ControlMessage dropped;
          dropped.type = ControlType::kChannelDropped;
          dropped.peer = command->peer;
          dropped.generation = command->generation;
          SendEvent(dropped);
          break;
        }
        case ControlType::kShutdown:
          shutdown_ = true;
          break;
        default:
          spdlog::warn("{}: ignoring control message {}", name_, static_cast<int>(command->type));
      }
    }
  }

  void Attach(int decoder, uint32_t generation) {
    ControlMessage reply;
    reply.type = ControlType::kChannelAttached;
    reply.peer = static_cast<uint32_t>(decoder);
    reply.generation = generation;
    Status status = [&]() -> Status {
      // A decoder has one channel at a time: an older one still attached is from a generation whose death
      // notice has not arrived (not expected, as the supervisor drops before it attaches anew).
      if (Attached* older = ChannelOf(decoder)) Drop(decoder, older->generation);
      auto attached = std::make_unique<Attached>();
      attached->decoder = decoder;
      attached->generation = generation;
      VS_ASSIGN_OR_RETURN(Mailbox producer, job_->mailbox(WorkerRole::kDecode, decoder));
      FrameChannel::Bells bells{mailbox_.bell, producer.bell};
      VS_ASSIGN_OR_RETURN(attached->channel, FrameChannel::Open(job_->ChannelName(decoder, generation), bells));
      if (options_.open_pool) {
        VS_ASSIGN_OR_RETURN(attached->pool, options_.open_pool(attached->channel->pool()));
      } else {
        VS_ASSIGN_OR_RETURN(attached->pool, HostSlotPool::Open(attached->channel->pool()));
      }
      channels_.push_back(std::move(attached));
      return Status::Ok();
    }();
    if (!status.ok()) {
      spdlog::warn("{}: attaching decode-{} generation {}: {}", name_, decoder, generation, status.ToString());
      reply.status_code = static_cast<int32_t>(status.code());
      SetText(reply, status.message());
    }
    SendEvent(reply);
  }

  // The decoder died: its frames are not read (its pool may be gone with it) and its videos restart
  // elsewhere.
  void Drop(int decoder, uint32_t generation) {
    auto it = std::find_if(channels_.begin(), channels_.end(), [&](const auto& c) {
      return c->decoder == decoder && c->generation == generation;
    });
    if (it == channels_.end()) return;
    // Its frames not yet started are not read; batches already started are finished first (the consumer
    // forgets the videos below only after), and videos it had ended before it died are committed then.
    std::erase_if(batch_, [&](const ReceivedFrame& f) { return f.decoder == decoder; });
    if (!FinishAll()) stage_failed_ = true;
    // Its videos' commits in progress too: the supervisor starts their next attempts (which write where
    // these do) once it hears the channel was dropped.
    WaitForCommits();
    std::erase_if(pending_ends_, [&](const PendingEnd& e) { return e.decoder == decoder; });
    for (auto v = videos_.begin(); v != videos_.end();) {
      if (v->second.decoder == decoder) {
        consumer_.AbandonVideo(v->first.first, v->first.second);
        v = videos_.erase(v);
      } else {
        ++v;
      }
    }
    channels_.erase(it);
  }

  Attached* ChannelOf(int decoder) {
    for (auto& c : channels_) {
      if (c->decoder == decoder) return c.get();
    }
    return nullptr;
  }

  // Returns false on a failure only a restart can fix.
  bool Handle(Attached& channel, const FrameDescriptor& d) {
    if (channel.next_sequence && d.sequence != *channel.next_sequence) {
      spdlog::error("{}: decode-{} descriptor {} arrived where {} was due", name_, channel.decoder, d.sequence,
                    *channel.next_sequence);
      return false;
    }
    channel.next_sequence = d.sequence + 1;
    if (Status valid = ValidateDescriptor(d, channel.pool->slot_count(), channel.pool->slot_bytes()); !valid.ok()) {
      spdlog::error("{}: decode-{}: {}", name_, channel.decoder, valid.ToString());
      return false;
    }
    const VideoKey key{d.video_id, d.attempt};
    switch (d.kind) {
      case DescriptorKind::kVideoBegin: {
        ActiveVideo video;
        video.decoder = channel.decoder;
        video.failed = consumer_.BeginVideo(d.video_id, d.attempt);
        videos_[key] = std::move(video);
        return true;
      }
      case DescriptorKind::kFrame: {
        auto it = videos_.find(key);
        if (it == videos_.end() || !it->second.failed.ok()) return Return(channel, d.slot);
        auto view = channel.pool->View(d);
        if (!view.ok()) {
          spdlog::error("{}: {}", name_, view.status().ToString());
          return false;
        }
        if (batch_.empty()) batch_started_ = Clock::now();
        batch_.push_back(ReceivedFrame{d, *view, channel.decoder, channel.pool.get()});
        ++it->second.frames;
        return true;
      }
      case DescriptorKind::kVideoData: {
        const VideoDataChunk chunk = DataChunkOf(d);
        if (chunk.offset == 0) {
          channel.data.clear();
          channel.data_video = key;
        } else if (channel.data_video != key || chunk.offset != channel.data.size()) {
          spdlog::error("{}: decode-{}: data chunk of video {} at offset {} does not continue the message", name_,
                        channel.decoder, d.video_id, chunk.offset);
          return false;
        }
        channel.data.append(chunk.bytes);
        if (!chunk.last) return true;
        std::string data = std::move(channel.data);
        channel.data.clear();
        auto it = videos_.find(key);
        if (it == videos_.end() || !it->second.failed.ok()) return true;
        // A plain consumer gets the message after the frames sent before it: those still waiting in the
        // batch go first. A pipelined one takes it as it comes (see VideoConsumer::batches_in_flight), so a
        // video's last message does not force a partial batch.
        if (!Pipelined() && Holds(batch_, key) && !Drain()) return false;
        if (Status accepted = consumer_.VideoData(d.video_id, d.attempt, data); !accepted.ok()) {
          it->second.failed = accepted;
        }
        return true;
      }
      case DescriptorKind::kVideoEnd: {
        if (!videos_.count(key)) return true;  // its begin was dropped with an older attach
        // Committed once every frame of it went through the consumer; other videos' batches go on.
        std::optional<uint64_t> barrier = LastBatchHolding(key);
        if (!barrier) return EndVideo(key, StatusOf(d), channel.decoder);
        pending_ends_.push_back({key, StatusOf(d), channel.decoder, *barrier});
        return true;
      }
      case DescriptorKind::kVideoAbandoned: {
        // Its frames not yet started are dropped; started batches finish before the consumer forgets it.
        std::erase_if(batch_, [&](const ReceivedFrame& f) {
          if (f.descriptor.video_id != d.video_id || f.descriptor.attempt != d.attempt) return false;
          ReturnFrame(f);
          return true;
        });
        if (!FinishAll()) return false;
        std::erase_if(pending_ends_, [&](const PendingEnd& e) { return e.key == key; });
        if (videos_.erase(key)) consumer_.AbandonVideo(d.video_id, d.attempt);
        return true;
      }
    }
    return true;
  }

  // Commits a video all of whose frames went through the consumer; the supervisor hears of it when the
  // commit is done (SendCommitted).
  bool EndVideo(const VideoKey& key, const Status& producer_status, int decoder) {
    auto it = videos_.find(key);
    if (it == videos_.end()) return true;
    const auto [video_id, attempt] = key;
    Committed committed{key, decoder, it->second.frames, {}};
    const Status failed = it->second.failed;
    videos_.erase(it);
    if (!failed.ok()) {
      consumer_.AbandonVideo(video_id, attempt);
      committed.result.status = failed;
      SendCommitted(committed);
      return true;
    }
    {
      std::lock_guard lock(commits_mutex_);
      ++commits_in_progress_;
    }
    consumer_.CommitVideo(video_id, attempt, producer_status, [this, committed](VideoResult result) mutable {
      committed.result = std::move(result);
      // All under the lock, the count last: the destructor may run as soon as the count is 0 and the
      // lock free, so nothing of this object may be touched after.
      std::lock_guard lock(commits_mutex_);
      committed_.push_back(std::move(committed));
      mailbox_.bell->Ring();  // the main loop sends it (SendEvent is not for other threads)
      --commits_in_progress_;
      commits_changed_.notify_all();
    });
    ReportCommitted();
    return true;
  }

  // Sends the commits finished since the last call.
  void ReportCommitted() {
    std::deque<Committed> finished;
    {
      std::lock_guard lock(commits_mutex_);
      finished.swap(committed_);
    }
    for (const Committed& c : finished) SendCommitted(c);
  }

  // Waits for every commit in progress, and reports them.
  void WaitForCommits() {
    {
      std::unique_lock lock(commits_mutex_);
      commits_changed_.wait(lock, [&] { return commits_in_progress_ == 0; });
    }
    ReportCommitted();
  }

  void SendCommitted(const Committed& c) {
    SendReport(c.key.first, c.key.second, c.result.report);
    ControlMessage done;
    done.type = ControlType::kVideoDone;
    done.peer = static_cast<uint32_t>(c.decoder);
    done.video_id = c.key.first;
    done.attempt = c.key.second;
    done.frames = c.frames;
    done.status_code = static_cast<int32_t>(c.result.status.code());
    SetText(done, c.result.status.message());
    SendEvent(done);
  }

  // The report goes ahead of its kVideoDone in chunks; the supervisor assembles them.
  void SendReport(uint64_t video_id, uint32_t attempt, std::string_view report) {
    if (report.size() > kMaxVideoReportBytes) {
      spdlog::warn("{}: video {}: report of {} bytes cut to {}", name_, video_id, report.size(), kMaxVideoReportBytes);
      report = report.substr(0, kMaxVideoReportBytes);
    }
    for (size_t offset = 0; offset < report.size();) {
      ControlMessage chunk;
      chunk.type = ControlType::kVideoReport;
      chunk.video_id = video_id;
      chunk.attempt = attempt;
      chunk.frames = static_cast<int64_t>(offset);
      chunk.text_bytes = static_cast<uint32_t>(std::min(report.size() - offset, sizeof(chunk.text)));
      std::memcpy(chunk.text, report.data() + offset, chunk.text_bytes);
      offset += chunk.text_bytes;
      SendEvent(chunk);
    }
  }

  bool Return(Attached& channel, int slot) {
    if (Status returned = channel.channel->ReturnSlot(slot); !returned.ok()) {
      spdlog::error("{}: decode-{}: {}", name_, channel.decoder, returned.ToString());
      return false;
    }
    return true;
  }

  // Returns a frame's slot to its producer, if the channel it came through is still attached.
  bool ReturnFrame(const ReceivedFrame& frame) {
    for (auto& c : channels_) {
      if (c->decoder == frame.decoder && c->pool.get() == frame.pool) return Return(*c, frame.descriptor.slot);
    }
    return true;
  }

  bool Pipelined() const { return consumer_.batches_in_flight() > 1; }

  static bool Holds(std::span<const ReceivedFrame> frames, const VideoKey& key) {
    return std::any_of(frames.begin(), frames.end(), [&](const ReceivedFrame& f) {
      return f.descriptor.video_id == key.first && f.descriptor.attempt == key.second;
    });
  }

  // The serial of the last batch, started or still gathering, holding a frame of the video; none when all
  // of its frames are finished.
  std::optional<uint64_t> LastBatchHolding(const VideoKey& key) const {
    if (Holds(batch_, key)) return next_serial_;
    for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) {
      if (Holds(it->frames, key)) return it->serial;
    }
    return std::nullopt;
  }

  // Hands the gathered batch to the consumer; with batches_in_flight() of them started, finishes the
  // oldest (its GPU work ran while this one was gathered).
  bool StartBatch() {
    if (batch_.empty()) return true;
    if (Status started = consumer_.StartBatch(batch_); !started.ok()) {
      spdlog::error("{}: {}", name_, started.ToString());
      return false;
    }
    in_flight_.push_back({next_serial_++, std::move(batch_)});
    batch_.clear();
    last_start_ = Clock::now();
    while (static_cast<int>(in_flight_.size()) >= std::max(1, consumer_.batches_in_flight())) {
      if (!FinishOldest()) return false;
    }
    return true;
  }

  bool FinishOldest() {
    if (in_flight_.empty()) return true;
    if (Status finished = consumer_.FinishBatch(); !finished.ok()) {
      spdlog::error("{}: {}", name_, finished.ToString());
      return false;
    }
    StartedBatch batch = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (!batch.slots_returned) {
      for (const ReceivedFrame& frame : batch.frames) {
        if (!ReturnFrame(frame)) return false;
      }
    }
    finished_batches_ = batch.serial + 1;
    // Videos whose last frames were in it are committed now.
    for (size_t i = 0; i < pending_ends_.size();) {
      if (pending_ends_[i].barrier >= finished_batches_) {
        ++i;
        continue;
      }
      PendingEnd end = std::move(pending_ends_[i]);
      pending_ends_.erase(pending_ends_.begin() + static_cast<std::ptrdiff_t>(i));
      if (!EndVideo(end.key, end.producer_status, end.decoder)) return false;
    }
    return true;
  }

  // Gives back the slots of the oldest started batches the consumer has finished reading, ahead of their
  // FinishBatch (VideoConsumer::BatchesDoneReading).
  bool ReturnReadSlots() {
    unread_slots_ = false;
    if (in_flight_.empty()) return true;
    const std::optional<int> read = consumer_.BatchesDoneReading();
    if (!read) return true;
    for (size_t i = 0; i < std::min(static_cast<size_t>(std::max(*read, 0)), in_flight_.size()); ++i) {
      StartedBatch& batch = in_flight_[i];
      if (batch.slots_returned) continue;
      for (const ReceivedFrame& frame : batch.frames) {
        if (!ReturnFrame(frame)) return false;
      }
      batch.slots_returned = true;
    }
    unread_slots_ = std::any_of(in_flight_.begin(), in_flight_.end(), [](const StartedBatch& b) { return !b.slots_returned; });
    return true;
  }

  // When to look again at most, if it would be `deadline` otherwise: while a started batch still holds
  // slots the consumer will soon have read, every kReadPoll (the GPU reads a batch's frames ~0.1 ms after it
  // reaches it; the decoders may be waiting for those slots).
  Clock::time_point ReadPoll(Clock::time_point deadline) const {
    return unread_slots_ ? std::min(deadline, Clock::now() + kReadPoll) : deadline;
  }

  bool FinishAll() {
    while (!in_flight_.empty()) {
      if (!FinishOldest()) return false;
    }
    return true;
  }

  // Everything received so far goes through the consumer.
  bool Drain() { return StartBatch() && FinishAll(); }

  VideoConsumer& consumer_;
  const InferWorkerOptions& options_;
  std::vector<std::unique_ptr<Attached>> channels_;
  std::map<VideoKey, ActiveVideo> videos_;
  std::vector<ReceivedFrame> batch_;  // gathering; becomes batch next_serial_
  std::deque<StartedBatch> in_flight_;
  std::vector<PendingEnd> pending_ends_;
  uint64_t next_serial_ = 0;
  uint64_t finished_batches_ = 0;  // batches 0 .. finished_batches_ - 1 are finished
  bool stage_failed_ = false;      // set where a failure cannot be returned (a channel dropped)
  bool unread_slots_ = false;      // a started batch holds slots its consumer will report read
  size_t turn_ = 0;                // the channel whose turn it is (weighted round robin)
  bool turn_started_ = false;      // it has had its credit for this turn
  // Commits in the background (VideoConsumer::CommitVideo): their completions, from any thread.
  std::mutex commits_mutex_;
  std::condition_variable commits_changed_;
  int commits_in_progress_ = 0;
  std::deque<Committed> committed_;
  Clock::time_point last_start_;
  Clock::time_point batch_started_;
  size_t batch_size_ = 1;
  Clock::duration max_batch_wait_{};
  bool shutdown_ = false;
};

}  // namespace

Expected<WorkerIdentity> WorkerIdentity::FromEnvironment() {
  const char* job = std::getenv(kEnvJob);
  const char* role = std::getenv(kEnvRole);
  const char* index = std::getenv(kEnvIndex);
  if (!job || !role || !index) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("not started as a worker: {}, {} and {} must be set", kEnvJob, kEnvRole, kEnvIndex));
  }
  WorkerIdentity identity;
  identity.job = job;
  std::string_view role_name = role;
  if (role_name == "decode") {
    identity.role = WorkerRole::kDecode;
  } else if (role_name == "infer") {
    identity.role = WorkerRole::kInfer;
  } else {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("{}={}: expected decode or infer", kEnvRole, role));
  }
  std::string_view index_text = index;
  auto [end, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), identity.index);
  if (ec != std::errc() || end != index_text.data() + index_text.size() || identity.index < 0) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("{}={}: not a worker index", kEnvIndex, index));
  }
  return identity;
}

std::vector<std::pair<std::string, std::string>> WorkerIdentity::Environment() const {
  return {{kEnvJob, job}, {kEnvRole, WorkerRoleName(role)}, {kEnvIndex, std::to_string(index)}};
}

bool IsWorkerProcess() { return std::getenv(kEnvRole) != nullptr; }

Status VideoConsumer::VideoData(uint64_t, uint32_t, std::string_view) { return Status::Ok(); }

int RunDecodeWorker(VideoProducer& producer, const DecodeWorkerOptions& options) {
  DecodeWorker worker(producer, options);
  return worker.Run();
}

int RunInferWorker(VideoConsumer& consumer, const InferWorkerOptions& options) {
  InferWorker worker(consumer, options);
  return worker.Run();
}

}  // namespace vidscan::ipc
