#include "ipc/job_supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <chrono>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ipc/shm_region.h"
#include "ipc/worker.h"

namespace vidscan::ipc {
namespace {

using Clock = std::chrono::steady_clock;

enum class WorkerState { kStarting, kReady, kDown, kGone };
// A decoder's channel, as the supervisor sees it.
enum class ChannelState {
  kNone,        // no live decoder generation
  kUnattached,  // the decoder made it; its infer worker has not been told
  kAttaching,   // kAttachChannel sent
  kLive,        // attached
  kResetting,   // its infer worker died; kResetChannel sent
};

struct Worker {
  WorkerRole role = WorkerRole::kDecode;
  int index = 0;
  int process = -1;  // ProcessSupervisor id
  pid_t pid = 0;
  WorkerState state = WorkerState::kStarting;
  uint32_t generation = 0;
  Mailbox mailbox;
  std::string name;
  // When it last died; set until its next incarnation says hello (for the log: how long a restart took).
  std::optional<std::chrono::steady_clock::time_point> died_at;
  // Decoders only.
  ChannelState channel = ChannelState::kNone;
  std::deque<uint64_t> queue;  // assigned, not yet produced, in the order the decoder takes them
  // Infer workers only: the report being assembled from kVideoReport chunks, for the next kVideoDone.
  std::string report;
  std::pair<uint64_t, uint32_t> report_video{0, 0};
};

// A re-queued video waiting until an infer worker confirms it dropped the dead decoder's channel.
struct Hold {
  int infer = -1;  // -1: not held
  int decoder = -1;
  uint32_t generation = 0;
};

struct Video {
  uint64_t id = 0;
  VideoState state = VideoState::kPending;
  uint32_t attempt = 0;  // the latest attempt started
  int strikes = 0;
  int decoder = -1;      // while running
  bool produced = false;
  int64_t frames = 0;
  Status status;
  std::string report;
  Hold hold;
};

class JobSupervisor {
 public:
  JobSupervisor(std::span<const uint64_t> ids, const MultiProcessOptions& options) : options_(options) {
    for (uint64_t id : ids) {
      if (index_.count(id)) continue;
      index_[id] = videos_.size();
      Video video;
      video.id = id;
      videos_.push_back(video);
      pending_.push_back(id);
    }
  }

  Expected<MultiProcessReport> Run() {
    const auto started = Clock::now();
    report_.stale_shm_removed = RemoveStaleShm();
    for (const std::string& name : report_.stale_shm_removed) spdlog::info("removed stale shared memory {}", name);
    VS_RETURN_IF_ERROR(Validate());
    VS_ASSIGN_OR_RETURN(prefix_, ShmJobPrefix(getpid(), options_.tag));
    VS_ASSIGN_OR_RETURN(JobRegion job, JobRegion::Create(prefix_, Geometry()));
    job_.emplace(std::move(job));
    Status result = RunWithJob();
    Shutdown();
    job_.reset();
    // Whatever a dead worker left behind (the job region itself is gone with job_).
    for (const std::string& name : ListShm(prefix_)) {
      spdlog::warn("removing leftover shared memory {}", name);
      (void)UnlinkShm(name);
    }
    if (!result.ok()) return result;
    report_.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    for (const Video& video : videos_) {
      report_.videos.push_back(VideoOutcome{video.id, video.state, static_cast<int>(video.attempt), video.strikes,
                                            video.frames, video.status, video.report});
      if (video.state == VideoState::kDone) report_.frames += video.frames;
    }
    return report_;
  }

 private:
  Status Validate() const {
    if (options_.worker_argv.empty()) return MakeError(StatusCode::kInvalidArgument, "no worker command given");
    if (options_.decode_workers < 1 || options_.infer_workers < 1 || options_.infer_workers > options_.decode_workers) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("workers decode={} infer={}: each decoder feeds one infer worker, so 1 <= infer <= decode",
                                   options_.decode_workers, options_.infer_workers));
    }
    if (options_.slot_bytes == 0 || options_.slots_per_decoder < 1 || options_.batch_size < 1 ||
        options_.max_videos_per_decoder < 1 || options_.max_attempts < 1) {
      return MakeError(StatusCode::kInvalidArgument,
                       "slot bytes, slots, batch size, videos per decoder and attempts must be positive");
    }
    return Status::Ok();
  }

  JobGeometry Geometry() const {
    JobGeometry g;
    g.decode_workers = static_cast<uint32_t>(options_.decode_workers);
    g.infer_workers = static_cast<uint32_t>(options_.infer_workers);
    g.slots_per_decoder = static_cast<uint32_t>(options_.slots_per_decoder);
    g.slot_bytes = options_.slot_bytes;
    g.descriptor_capacity = static_cast<uint32_t>(
        options_.descriptor_capacity > 0 ? options_.descriptor_capacity : 2 * options_.slots_per_decoder + 8);
    g.batch_size = static_cast<uint32_t>(options_.batch_size);
    g.max_batch_wait_us = static_cast<uint32_t>(options_.max_batch_wait.count());
    return g;
  }

  Status RunWithJob() {
    Doorbell* bell = job_->supervisor_bell();
    processes_.emplace(options_.restart, [bell] { bell->Ring(); });
    for (int role = 0; role < 2; ++role) {
      int count = role == 0 ? options_.decode_workers : options_.infer_workers;
      for (int i = 0; i < count; ++i) {
        Worker worker;
        worker.role = role == 0 ? WorkerRole::kDecode : WorkerRole::kInfer;
        worker.index = i;
        worker.name = fmt::format("{}-{}", WorkerRoleName(worker.role), i);
        VS_ASSIGN_OR_RETURN(worker.mailbox, job_->mailbox(worker.role, i));
        ProcessSpec spec;
        spec.name = worker.name;
        spec.argv = options_.worker_argv;
        spec.env = options_.worker_env;
        WorkerIdentity identity{job_->name(), worker.role, i};
        for (auto& entry : identity.Environment()) spec.env.push_back(entry);
        VS_ASSIGN_OR_RETURN(worker.process, processes_->Start(std::move(spec)));
        (role == 0 ? decoders_ : infers_).push_back(std::move(worker));
      }
    }
    const auto started = Clock::now();
    while (!AllFinished()) {
      uint32_t armed = bell->Arm();
      for (const ProcessEvent& event : processes_->Poll()) OnProcessEvent(event);
      DrainAllEvents();
      FailIfNoWorkersLeft();
      Schedule();
      if (AllFinished()) break;
      if (options_.cancel && options_.cancel->load()) {
        return MakeError(StatusCode::kUnavailable, "multi-process job cancelled");
      }
      if (options_.timeout.count() > 0 && Clock::now() - started > options_.timeout) {
        int unfinished = static_cast<int>(std::count_if(videos_.begin(), videos_.end(), [](const Video& v) {
          return v.state == VideoState::kPending || v.state == VideoState::kRunning;
        }));
        return MakeError(StatusCode::kUnavailable, fmt::format("multi-process job timed out after {} ms with {} videos unfinished",
                                                               options_.timeout.count(), unfinished));
      }
      Clock::duration wait = std::chrono::milliseconds(100);
      if (auto restart = processes_->NextRestartIn()) wait = std::min(wait, *restart + std::chrono::milliseconds(1));
      bell->Wait(armed, wait);
    }
    return Status::Ok();
  }

  void Shutdown() {
    if (!processes_) return;
    for (auto* workers : {&decoders_, &infers_}) {
      for (Worker& worker : *workers) {
        processes_->SetRestartOnFailure(worker.process, false);
        if (worker.state == WorkerState::kStarting || worker.state == WorkerState::kReady) {
          ControlMessage stop;
          stop.type = ControlType::kShutdown;
          (void)worker.mailbox.commands.TryPush(stop);
        }
      }
    }
    // Workers exit on kShutdown; whatever has not after the grace is terminated. Their events are still
    // read (a worker must not block on a full event ring), and a video committed meanwhile is reported
    // done — after a cancel too, so a ledger never re-runs a video whose outputs are complete.
    stopping_ = true;
    const auto deadline = Clock::now() + options_.stop_grace;
    while (processes_->running_count() > 0 && Clock::now() < deadline) {
      uint32_t armed = job_->supervisor_bell()->Arm();
      (void)processes_->Poll();
      DrainAllEvents();
      if (processes_->running_count() == 0) break;
      job_->supervisor_bell()->Wait(armed, std::chrono::milliseconds(20));
    }
    processes_->StopAll(options_.stop_grace);
    processes_.reset();
    DrainAllEvents();
  }

  bool AllFinished() const {
    return std::all_of(videos_.begin(), videos_.end(), [](const Video& v) {
      return v.state == VideoState::kDone || v.state == VideoState::kFailed;
    });
  }

  Worker* FindWorker(int process) {
    for (auto* workers : {&decoders_, &infers_}) {
      for (Worker& worker : *workers) {
        if (worker.process == process) return &worker;
      }
    }
    return nullptr;
  }

  Worker& ConsumerOf(const Worker& decoder) { return infers_[job_->ConsumerOf(decoder.index)]; }
  bool Up(const Worker& worker) const { return worker.state == WorkerState::kStarting || worker.state == WorkerState::kReady; }

  void Notify(JobEvent event) {
    if (options_.observer) options_.observer(event);
  }

  void NotifyWorker(JobEvent::Kind kind, const Worker& worker, pid_t pid, std::string detail = {}) {
    JobEvent event;
    event.kind = kind;
    event.role = worker.role;
    event.worker = worker.index;
    event.pid = pid;
    event.detail = std::move(detail);
    Notify(std::move(event));
  }

  void NotifyVideo(JobEvent::Kind kind, const Video& video, uint32_t attempt, int decoder) {
    JobEvent event;
    event.kind = kind;
    event.worker = decoder;
    event.video_id = video.id;
    event.attempt = attempt;
    event.state = video.state;
    event.detail = video.status.ok() ? "" : video.status.ToString();
    if (kind == JobEvent::Kind::kVideoFinished) event.report = video.report;
    Notify(std::move(event));
  }

  // Pushes a command; a worker whose command ring is full is stuck and gets killed (its death then
  // re-queues its videos).
  bool SendCommand(Worker& worker, const ControlMessage& command) {
    if (stopping_) return false;  // the workers are being shut down (or are gone): nothing more to tell them
    if (worker.mailbox.commands.TryPush(command)) return true;
    spdlog::error("{}: command ring full; killing the worker", worker.name);
    if (worker.pid > 0) kill(worker.pid, SIGKILL);
    return false;
  }

  // ---- process events ----

  void OnProcessEvent(const ProcessEvent& event) {
    Worker* worker = FindWorker(event.id);
    if (!worker) return;
    switch (event.kind) {
      case ProcessEvent::Kind::kStarted:
        worker->pid = event.pid;
        worker->state = WorkerState::kStarting;
        if (event.restarts > 0) {
          ++report_.worker_restarts;
          spdlog::info("{} restarted (pid {})", worker->name, event.pid);
        }
        NotifyWorker(JobEvent::Kind::kWorkerStarted, *worker, event.pid);
        break;
      case ProcessEvent::Kind::kExited:
        OnWorkerDeath(*worker, event);
        break;
      case ProcessEvent::Kind::kGaveUp:
        worker->state = WorkerState::kGone;
        spdlog::error("{}", event.Describe());
        break;
    }
  }

  void OnWorkerDeath(Worker& worker, const ProcessEvent& event) {
    const std::string what = event.Describe();
    spdlog::warn("{}", what);
    worker.died_at = std::chrono::steady_clock::now();
    ++report_.worker_deaths;
    report_.deaths.push_back(what);
    // What it said before dying still counts (a video it committed is done).
    DrainEvents(worker);
    // It is reaped: its rings have one live party left, us.
    worker.mailbox.commands.ClearWithoutPeer();
    worker.mailbox.events.ClearWithoutPeer();
    // Only its owner sleeps on a mailbox doorbell; a worker killed in its sleep left itself counted, which
    // would cost every later ring a useless wake syscall.
    worker.mailbox.bell->sleepers.store(0);
    worker.pid = 0;
    worker.state = event.restarting ? WorkerState::kDown : WorkerState::kGone;
    worker.report.clear();
    if (worker.role == WorkerRole::kDecode) {
      // Its shm names: the generation it announced and any later one it made before dying unannounced.
      uint32_t last = worker.mailbox.starts->load();
      for (uint32_t g = std::max(worker.generation, 1u); g <= last; ++g) {
        (void)UnlinkShm(job_->ChannelName(worker.index, g));
        (void)UnlinkShm(job_->PoolName(worker.index, g));
      }
      Worker& consumer = ConsumerOf(worker);
      Hold hold;
      if ((worker.channel == ChannelState::kAttaching || worker.channel == ChannelState::kLive) && Up(consumer)) {
        ControlMessage drop;
        drop.type = ControlType::kDropChannel;
        drop.peer = static_cast<uint32_t>(worker.index);
        drop.generation = worker.generation;
        // The consumer may still hold attempts of these videos: they wait for its kChannelDropped (a
        // consumer that cannot take the command is killed, and its death releases them).
        if (SendCommand(consumer, drop)) hold = Hold{consumer.index, worker.index, worker.generation};
      }
      worker.channel = ChannelState::kNone;
      RequeueVideosOf(worker, what, /*blame_produced=*/false, hold);
    } else {
      // Whatever it held died with it.
      ReleaseHolds([&](const Hold& h) { return h.infer == worker.index; });
      for (Worker& decoder : decoders_) {
        if (job_->ConsumerOf(decoder.index) != worker.index) continue;
        RequeueVideosOf(decoder, what, /*blame_produced=*/true);
        // An unattached channel too: it may hold frames of videos assigned before the consumer was ready
        // (Schedule), which were just re-queued.
        if (decoder.channel == ChannelState::kUnattached || decoder.channel == ChannelState::kAttaching ||
            decoder.channel == ChannelState::kLive) {
          if (decoder.state == WorkerState::kReady) {
            ControlMessage reset;
            reset.type = ControlType::kResetChannel;
            if (SendCommand(decoder, reset)) decoder.channel = ChannelState::kResetting;
          }
        }
      }
    }
    NotifyWorker(JobEvent::Kind::kWorkerExited, worker, event.pid, what);
  }

  // Re-queues every running video of `decoder`. Strikes go to the video the decoder was producing and,
  // when the consumer died, to those already produced and in the consumer's hands; videos still waiting
  // in the decoder's queue were not touched by anyone.
  void RequeueVideosOf(Worker& decoder, const std::string& death, bool blame_produced, Hold hold = {}) {
    std::optional<uint64_t> producing;
    if (!decoder.queue.empty()) producing = decoder.queue.front();
    std::vector<uint64_t> requeue;
    for (Video& video : videos_) {
      if (video.state != VideoState::kRunning || video.decoder != decoder.index) continue;
      bool blamed = (producing && *producing == video.id) || (blame_produced && video.produced);
      if (blamed) ++video.strikes;
      video.decoder = -1;
      video.produced = false;
      if (video.strikes >= options_.max_attempts) {
        video.state = VideoState::kFailed;
        video.status = MakeError(StatusCode::kUnavailable,
                                 fmt::format("video {}: a worker died {} times while processing it (last: {})",
                                             video.id, video.strikes, death));
        spdlog::error("{}", video.status.message());
        NotifyVideo(JobEvent::Kind::kVideoFinished, video, video.attempt, decoder.index);
      } else {
        video.state = VideoState::kPending;
        video.hold = hold;
        requeue.push_back(video.id);
      }
    }
    decoder.queue.clear();
    // To the front, in their original order: they run again soon.
    for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) pending_.push_front(*it);
  }

  template <typename Match>
  void ReleaseHolds(Match match) {
    for (Video& video : videos_) {
      if (video.hold.infer >= 0 && match(video.hold)) video.hold = Hold{};
    }
  }

  void FailIfNoWorkersLeft() {
    bool any_group = false;
    for (const Worker& infer : infers_) {
      if (infer.state == WorkerState::kGone) continue;
      for (const Worker& decoder : decoders_) {
        if (job_->ConsumerOf(decoder.index) == infer.index && decoder.state != WorkerState::kGone) any_group = true;
      }
    }
    if (any_group) return;
    const std::string why = report_.deaths.empty() ? "no workers" : report_.deaths.back();
    for (Video& video : videos_) {
      if (video.state == VideoState::kDone || video.state == VideoState::kFailed) continue;
      video.state = VideoState::kFailed;
      video.status = MakeError(StatusCode::kUnavailable,
                               fmt::format("video {}: no decode/infer worker pair is left to run it (last death: {})",
                                           video.id, why));
      NotifyVideo(JobEvent::Kind::kVideoFinished, video, video.attempt, video.decoder);
    }
    pending_.clear();
  }

  // ---- worker events ----

  void DrainAllEvents() {
    for (auto* workers : {&decoders_, &infers_}) {
      for (Worker& worker : *workers) DrainEvents(worker);
    }
  }

  void DrainEvents(Worker& worker) {
    while (std::optional<ControlMessage> event = worker.mailbox.events.TryPop()) OnWorkerEvent(worker, *event);
  }

  void OnWorkerEvent(Worker& worker, const ControlMessage& event) {
    switch (event.type) {
      case ControlType::kHello:
        if (worker.died_at) {
          spdlog::info("{} is ready again, {:.1f} s after its death", worker.name,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - *worker.died_at).count());
          worker.died_at.reset();
        }
        worker.state = WorkerState::kReady;
        worker.generation = event.generation;
        NotifyWorker(JobEvent::Kind::kWorkerReady, worker, worker.pid);
        if (worker.role == WorkerRole::kDecode) {
          worker.channel = ChannelState::kUnattached;
          TryAttach(worker);
        } else {
          for (Worker& decoder : decoders_) {
            if (job_->ConsumerOf(decoder.index) == worker.index) TryAttach(decoder);
          }
        }
        break;
      case ControlType::kChannelReset:
        if (worker.role == WorkerRole::kDecode && worker.channel == ChannelState::kResetting) {
          worker.channel = ChannelState::kUnattached;
          TryAttach(worker);
        }
        break;
      case ControlType::kChannelAttached: {
        if (event.peer >= decoders_.size()) break;
        Worker& decoder = decoders_[event.peer];
        if (decoder.generation != event.generation || decoder.channel != ChannelState::kAttaching) break;  // stale
        if (event.status_code == 0) {
          decoder.channel = ChannelState::kLive;
        } else {
          // The decoder is alive but its channel cannot be mapped: start it over with new objects.
          spdlog::error("{} could not attach {}'s channel: {}; restarting {}", worker.name, decoder.name,
                        TextOf(event), decoder.name);
          if (decoder.pid > 0) kill(decoder.pid, SIGKILL);
        }
        break;
      }
      case ControlType::kVideoProduced: {
        report_.producer_waits += event.waits;
        report_.producer_wait_seconds += static_cast<double>(event.wait_us) / 1e6;
        auto it = index_.find(event.video_id);
        if (it == index_.end()) break;
        Video& video = videos_[it->second];
        if (video.state == VideoState::kRunning && video.attempt == event.attempt && video.decoder == worker.index) {
          std::erase(worker.queue, event.video_id);
          video.produced = true;
          NotifyVideo(JobEvent::Kind::kVideoProduced, video, event.attempt, worker.index);
        }
        break;
      }
      case ControlType::kVideoReport: {
        const std::pair<uint64_t, uint32_t> key{event.video_id, event.attempt};
        const size_t bytes = std::min<size_t>(event.text_bytes, sizeof(event.text));
        if (event.frames == 0) {
          worker.report.clear();
          worker.report_video = key;
        } else if (worker.report_video != key || static_cast<size_t>(event.frames) != worker.report.size() ||
                   worker.report.size() + bytes > kMaxVideoReportBytes) {
          spdlog::warn("{}: report chunk of video {} at offset {} does not continue the report; dropped", worker.name,
                       event.video_id, event.frames);
          worker.report.clear();
          worker.report_video = {0, 0};
          break;
        }
        worker.report.append(event.text, bytes);
        break;
      }
      case ControlType::kChannelDropped:
        ReleaseHolds([&](const Hold& h) {
          return h.infer == worker.index && h.decoder == static_cast<int>(event.peer) && h.generation == event.generation;
        });
        break;
      case ControlType::kVideoDone: {
        std::string report;
        if (worker.report_video == std::pair<uint64_t, uint32_t>{event.video_id, event.attempt}) report = std::move(worker.report);
        worker.report.clear();
        worker.report_video = {0, 0};
        OnVideoDone(event, std::move(report));
        break;
      }
      default:
        spdlog::warn("{}: unexpected control message {}", worker.name, static_cast<int>(event.type));
    }
  }

  void OnVideoDone(const ControlMessage& event, std::string report) {
    auto it = index_.find(event.video_id);
    if (it == index_.end()) return;
    Video& video = videos_[it->second];
    if (video.state == VideoState::kDone || video.state == VideoState::kFailed) return;
    const bool ok = event.status_code == 0;
    // A failure counts only from the attempt that is current; any attempt's success is the video's.
    if (!ok && !(video.state == VideoState::kRunning && video.attempt == event.attempt)) return;
    if (video.state == VideoState::kRunning) {
      Worker& decoder = decoders_[video.decoder];
      bool queued = std::find(decoder.queue.begin(), decoder.queue.end(), video.id) != decoder.queue.end();
      if (video.attempt != event.attempt && queued) {
        ControlMessage abandon;
        abandon.type = ControlType::kAbandonVideo;
        abandon.video_id = video.id;
        abandon.attempt = video.attempt;
        SendCommand(decoder, abandon);
      }
      std::erase(decoder.queue, video.id);
    } else {
      std::erase(pending_, video.id);
    }
    video.decoder = -1;
    video.frames = event.frames;
    video.report = std::move(report);
    video.hold = Hold{};
    if (ok) {
      video.state = VideoState::kDone;
      video.status = Status::Ok();
    } else {
      video.state = VideoState::kFailed;
      auto code = static_cast<StatusCode>(event.status_code);
      if (event.status_code < 0 || event.status_code > static_cast<int32_t>(StatusCode::kInternal)) code = StatusCode::kInternal;
      video.status = MakeError(code, TextOf(event));
    }
    NotifyVideo(JobEvent::Kind::kVideoFinished, video, event.attempt, static_cast<int>(event.peer));
  }

  void TryAttach(Worker& decoder) {
    if (decoder.state != WorkerState::kReady || decoder.channel != ChannelState::kUnattached) return;
    Worker& consumer = ConsumerOf(decoder);
    if (consumer.state != WorkerState::kReady) return;
    ControlMessage attach;
    attach.type = ControlType::kAttachChannel;
    attach.peer = static_cast<uint32_t>(decoder.index);
    attach.generation = decoder.generation;
    if (SendCommand(consumer, attach)) decoder.channel = ChannelState::kAttaching;
  }

  // ---- scheduling ----

  bool Suspect(uint64_t id) const { return videos_[index_.at(id)].strikes >= std::max(1, options_.isolate_after_strikes); }
  bool Held(uint64_t id) const { return videos_[index_.at(id)].hold.infer >= 0; }

  // Running videos of the decoders feeding infer worker `group`: how many, and whether one is a suspect.
  std::pair<int, bool> GroupLoad(int group) const {
    int running = 0;
    bool suspect = false;
    for (const Video& video : videos_) {
      if (video.state != VideoState::kRunning || job_->ConsumerOf(video.decoder) != group) continue;
      ++running;
      suspect |= Suspect(video.id);
    }
    return {running, suspect};
  }

  void Assign(Worker& decoder, uint64_t id) {
    Video& video = videos_[index_.at(id)];
    std::erase(pending_, id);
    ++video.attempt;
    video.state = VideoState::kRunning;
    video.decoder = decoder.index;
    video.produced = false;
    decoder.queue.push_back(id);
    ControlMessage assign;
    assign.type = ControlType::kAssignVideo;
    assign.video_id = id;
    assign.attempt = video.attempt;
    NotifyVideo(JobEvent::Kind::kVideoAssigned, video, video.attempt, decoder.index);
    SendCommand(decoder, assign);
  }

  // Videos a decoder may hold (running + queued). Queuing the next one saves a round trip per video, but
  // near the end of the job it would leave some decoders two videos while others have none, and the last
  // seconds of the job would run on a few decoders (a decoder works through its videos one at a time). So
  // once at most two rounds of videos are left, they go to idle decoders only.
  int QueueLimit() const {
    return pending_.size() > 2 * decoders_.size() ? options_.max_videos_per_decoder : 1;
  }

  // A decoder gets videos as soon as it is up, before its infer worker is ready or attached: it opens them
  // and fills its slots meanwhile (a channel holds frames until its consumer attaches), so the first
  // batches do not wait for demuxer and decoder set-up (the infer worker's start-up, model and cuDNN
  // planning, is the longest). Not while its channel is being reset after a consumer death.
  static bool Assignable(ChannelState channel) {
    return channel == ChannelState::kUnattached || channel == ChannelState::kAttaching || channel == ChannelState::kLive;
  }

  void Schedule() {
    if (pending_.empty()) return;
    if (draining_ >= 0 && infers_[draining_].state == WorkerState::kGone) draining_ = -1;
    const int n = static_cast<int>(decoders_.size());
    for (int k = 0; k < n && !pending_.empty(); ++k) {
      Worker& decoder = decoders_[(next_decoder_ + k) % n];
      if (decoder.state != WorkerState::kReady || !Assignable(decoder.channel)) continue;
      const int group = job_->ConsumerOf(decoder.index);
      if (infers_[group].state == WorkerState::kGone) continue;
      while (static_cast<int>(decoder.queue.size()) < QueueLimit() && !pending_.empty()) {
        auto [running, suspect_running] = GroupLoad(group);
        if (suspect_running) break;  // a suspect runs alone in its group
        auto first = std::find_if(pending_.begin(), pending_.end(), [&](uint64_t id) { return !Held(id); });
        if (first == pending_.end()) break;
        if (Suspect(*first)) {
          if (running == 0) {
            Assign(decoder, *first);
            if (draining_ == group) draining_ = -1;
            break;
          }
          // Let one group drain for it; the others go on with the rest.
          if (draining_ < 0) draining_ = group;
        }
        if (group == draining_) break;
        auto innocent = std::find_if(pending_.begin(), pending_.end(), [&](uint64_t id) { return !Suspect(id) && !Held(id); });
        if (innocent == pending_.end()) break;
        Assign(decoder, *innocent);
      }
    }
    next_decoder_ = (next_decoder_ + 1) % std::max(n, 1);
  }

  const MultiProcessOptions& options_;
  std::vector<Video> videos_;
  std::unordered_map<uint64_t, size_t> index_;
  std::deque<uint64_t> pending_;
  std::string prefix_;
  std::optional<JobRegion> job_;
  std::optional<ProcessSupervisor> processes_;  // destroyed before job_: its callback rings a bell in it
  std::vector<Worker> decoders_, infers_;
  int next_decoder_ = 0;
  int draining_ = -1;  // the group kept free of new videos until a suspect can run alone in it
  bool stopping_ = false;  // Shutdown() has begun
  MultiProcessReport report_;
};

}  // namespace

const char* VideoStateName(VideoState state) {
  switch (state) {
    case VideoState::kPending: return "pending";
    case VideoState::kRunning: return "running";
    case VideoState::kDone: return "done";
    case VideoState::kFailed: return "failed";
  }
  return "unknown";
}

Expected<MultiProcessReport> RunMultiProcessJob(std::span<const uint64_t> video_ids, const MultiProcessOptions& options) {
  JobSupervisor supervisor(video_ids, options);
  return supervisor.Run();
}

}  // namespace vidscan::ipc
