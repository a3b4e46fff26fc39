#include "support/ipc_synthetic.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "ipc/slot_memory.h"

namespace vidscan::testing {
namespace {

uint64_t EnvU64(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::strtoull(value, nullptr, 10) : 0;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

SyntheticConfig SyntheticConfig::FromEnvironment() {
  SyntheticConfig config;
  if (const char* dir = std::getenv("VIDSCAN_IPC_TEST_OUT")) config.out_dir = dir;
  config.decode_poison = EnvU64("VIDSCAN_IPC_TEST_DECODE_POISON");
  config.infer_poison = EnvU64("VIDSCAN_IPC_TEST_INFER_POISON");
  config.produce_delay_us = static_cast<int>(EnvU64("VIDSCAN_IPC_TEST_PRODUCE_DELAY_US"));
  config.consume_delay_us = static_cast<int>(EnvU64("VIDSCAN_IPC_TEST_CONSUME_DELAY_US"));
  config.pipeline_depth = std::max(1, static_cast<int>(EnvU64("VIDSCAN_IPC_TEST_PIPELINE_DEPTH")));
  config.commit_delay_ms = static_cast<int>(EnvU64("VIDSCAN_IPC_TEST_COMMIT_DELAY_MS"));
  config.read_at_start = EnvU64("VIDSCAN_IPC_TEST_READ_AT_START") != 0;
  return config;
}

std::vector<std::pair<std::string, std::string>> SyntheticConfig::Environment() const {
  return {{"VIDSCAN_IPC_TEST_OUT", out_dir},
          {"VIDSCAN_IPC_TEST_DECODE_POISON", std::to_string(decode_poison)},
          {"VIDSCAN_IPC_TEST_INFER_POISON", std::to_string(infer_poison)},
          {"VIDSCAN_IPC_TEST_PRODUCE_DELAY_US", std::to_string(produce_delay_us)},
          {"VIDSCAN_IPC_TEST_CONSUME_DELAY_US", std::to_string(consume_delay_us)},
          {"VIDSCAN_IPC_TEST_PIPELINE_DEPTH", std::to_string(pipeline_depth)},
          {"VIDSCAN_IPC_TEST_COMMIT_DELAY_MS", std::to_string(commit_delay_ms)},
          {"VIDSCAN_IPC_TEST_READ_AT_START", read_at_start ? "1" : "0"}};
}

int SyntheticFrameCount(uint64_t video_id) { return 12 + static_cast<int>((video_id * 7) % 20); }

void FillSyntheticFrame(uint64_t video_id, int64_t frame, uint8_t* luma, uint8_t* chroma, int pitch) {
  for (int y = 0; y < kSyntheticHeight; ++y) {
    uint64_t row = Mix(video_id * 1000003 + static_cast<uint64_t>(frame) * 1009 + static_cast<uint64_t>(y));
    for (int x = 0; x < kSyntheticWidth; ++x) luma[y * pitch + x] = static_cast<uint8_t>((row >> (x % 56)) + x);
  }
  for (int y = 0; y < (kSyntheticHeight + 1) / 2; ++y) {
    uint64_t row = Mix(~(video_id * 7919 + static_cast<uint64_t>(frame) * 104729 + static_cast<uint64_t>(y)));
    for (int x = 0; x < kSyntheticWidth; ++x) chroma[y * pitch + x] = static_cast<uint8_t>((row >> (x % 56)) ^ x);
  }
}

uint32_t FrameChecksum(const FrameView& frame) {
  uint32_t hash = 2166136261u;
  auto add = [&](const uint8_t* row, int bytes) {
    for (int i = 0; i < bytes; ++i) hash = (hash ^ row[i]) * 16777619u;
  };
  const FrameInfo& info = frame.info;
  for (int y = 0; y < info.height; ++y) add(frame.luma + static_cast<size_t>(y) * info.pitch, info.row_bytes());
  for (int y = 0; y < info.chroma_height(); ++y) {
    add(frame.chroma + static_cast<size_t>(y) * info.pitch, info.chroma_row_bytes());
  }
  return hash;
}

std::string OutputLine(const FrameInfo& info, uint32_t checksum) {
  return fmt::format("stream {} frame {} pts {:.6f} key {} {}x{} checksum {:08x}\n", info.stream_id, info.frame_index,
                     info.pts_seconds, info.keyframe ? 1 : 0, info.width, info.height, checksum);
}

std::string SyntheticHeader(uint64_t video_id) {
  return fmt::format("header of video {} {}", video_id, std::string(150 + video_id % 7, 'h'));
}

std::string SyntheticTrailer(uint64_t video_id) {
  return fmt::format("trailer of video {} after {} frames {}", video_id, SyntheticFrameCount(video_id),
                     std::string(120 + video_id % 5, 't'));
}

std::string SyntheticReport(uint64_t video_id, int64_t frames) {
  return fmt::format("{{\"video\":{},\"frames\":{},\"padding\":\"{}\"}}", video_id, frames, std::string(160, 'r'));
}

namespace {

FrameInfo SyntheticInfo(uint64_t video_id, int64_t frame) {
  FrameInfo info;
  info.stream_id = static_cast<int>(video_id);
  info.frame_index = frame;
  info.pts_seconds = static_cast<double>(frame) / 30.0;
  info.width = kSyntheticWidth;
  info.height = kSyntheticHeight;
  info.pitch = ipc::PackFrame(kSyntheticWidth, kSyntheticHeight, PixelFormat::kNV12).pitch;
  info.format = PixelFormat::kNV12;
  info.keyframe = frame % 10 == 0;
  return info;
}

}  // namespace

std::string ExpectedSyntheticOutput(uint64_t video_id) {
  const ipc::PackedFrameLayout layout = ipc::PackFrame(kSyntheticWidth, kSyntheticHeight, PixelFormat::kNV12);
  std::vector<uint8_t> buffer(layout.bytes);
  std::string out = SyntheticHeader(video_id) + "\n";
  for (int64_t f = 0; f < SyntheticFrameCount(video_id); ++f) {
    FillSyntheticFrame(video_id, f, buffer.data(), buffer.data() + layout.chroma_offset, layout.pitch);
    FrameView view;
    view.info = SyntheticInfo(video_id, f);
    view.luma = buffer.data();
    view.chroma = buffer.data() + layout.chroma_offset;
    out += OutputLine(view.info, FrameChecksum(view));
  }
  return out + SyntheticTrailer(video_id) + "\n";
}

std::string OutputPath(const std::string& dir, uint64_t video_id) { return fmt::format("{}/video{}.txt", dir, video_id); }

Status SyntheticProducer::Produce(uint64_t video_id, ipc::FrameWriter& out) {
  const ipc::PackedFrameLayout layout = ipc::PackFrame(kSyntheticWidth, kSyntheticHeight, PixelFormat::kNV12);
  VS_RETURN_IF_ERROR(out.SendVideoData(SyntheticHeader(video_id)));
  for (int64_t f = 0; f < SyntheticFrameCount(video_id); ++f) {
    if (video_id == config_.decode_poison && f == 3) std::abort();  // a video that crashes its decoder
    VS_ASSIGN_OR_RETURN(ipc::SlotBuffer slot, out.AcquireSlot());
    if (slot.bytes < layout.bytes) return MakeError(StatusCode::kInternal, "slot too small for the synthetic frame");
    auto* base = reinterpret_cast<uint8_t*>(slot.data);
    FillSyntheticFrame(video_id, f, base, base + layout.chroma_offset, layout.pitch);
    if (config_.produce_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(config_.produce_delay_us));
    VS_RETURN_IF_ERROR(out.SendFrame(slot, SyntheticInfo(video_id, f), layout.chroma_offset));
  }
  return out.SendVideoData(SyntheticTrailer(video_id));
}

SyntheticConsumer::~SyntheticConsumer() {
  for (std::thread& t : commit_threads_) t.join();
  for (auto& [key, file] : open_) {
    std::fclose(file);
    std::remove(TempPath(key.first, key.second).c_str());
  }
  if (FILE* stats = std::fopen(fmt::format("{}/infer-stats.{}", config_.out_dir, getpid()).c_str(), "w")) {
    std::fprintf(stats, "%zu %zu %zu %zu\n", max_batch_, max_decoders_in_batch_, batches_during_commits_, max_started_frames_);
    std::fclose(stats);
  }
}

SyntheticInferStats ReadInferStats(const std::string& dir) {
  SyntheticInferStats combined;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("infer-stats.", 0) != 0) continue;
    std::ifstream in(entry.path());
    SyntheticInferStats stats;
    in >> stats.max_batch >> stats.max_decoders_in_batch >> stats.batches_during_commits >> stats.max_started_frames;
    combined.batches_during_commits += stats.batches_during_commits;
    combined.max_started_frames = std::max(combined.max_started_frames, stats.max_started_frames);
    combined.max_batch = std::max(combined.max_batch, stats.max_batch);
    combined.max_decoders_in_batch = std::max(combined.max_decoders_in_batch, stats.max_decoders_in_batch);
  }
  return combined;
}

std::string SyntheticConsumer::TempPath(uint64_t video_id, uint32_t attempt) const {
  return fmt::format("{}/.video{}.attempt{}.pid{}.tmp", config_.out_dir, video_id, attempt, getpid());
}

namespace {

// A marker naming the process that has an attempt at the video open: the supervisor must never let two
// attempts be open at once (they would write the same output folder in the real pipeline).
std::string LiveMarkerPath(const std::string& dir, uint64_t video_id) { return fmt::format("{}/.live-video{}", dir, video_id); }

}  // namespace

Status SyntheticConsumer::BeginVideo(uint64_t video_id, uint32_t attempt) {
  const std::string marker = LiveMarkerPath(config_.out_dir, video_id);
  if (std::ifstream in(marker); in) {
    long holder = 0;
    in >> holder;
    if (holder > 0 && (kill(static_cast<pid_t>(holder), 0) == 0 || errno == EPERM)) {
      return MakeError(StatusCode::kInternal, fmt::format("video {} attempt {} began while process {} still has an "
                                                          "attempt at it open", video_id, attempt, holder));
    }
  }
  if (std::ofstream out(marker, std::ios::trunc); out) out << getpid() << "\n";
  std::string path = TempPath(video_id, attempt);
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return MakeError(StatusCode::kIoError, fmt::format("fopen {}: {}", path, std::strerror(errno)));
  open_[{video_id, attempt}] = file;
  frames_[{video_id, attempt}] = 0;
  return Status::Ok();
}

Status SyntheticConsumer::VideoData(uint64_t video_id, uint32_t attempt, std::string_view data) {
  auto it = open_.find({video_id, attempt});
  if (it == open_.end()) return MakeError(StatusCode::kInternal, fmt::format("data of video {} that never began", video_id));
  std::string line = std::string(data) + "\n";
  // Pipelined, frames sent before a message may not even be started when it arrives: the header (the
  // first message, sent before any frame) is written at once, later messages at EndVideo.
  if (config_.pipeline_depth > 1 && data_messages_[{video_id, attempt}]++ > 0) {
    deferred_data_[{video_id, attempt}] += line;
    return Status::Ok();
  }
  std::fwrite(line.data(), 1, line.size(), it->second);
  return Status::Ok();
}

int64_t SyntheticConsumer::Pending(uint64_t video_id, uint32_t attempt) const {
  int64_t pending = 0;
  for (const auto& batch : started_) {
    for (const ipc::ReceivedFrame& f : batch) pending += f.descriptor.video_id == video_id && f.descriptor.attempt == attempt;
  }
  return pending;
}

Status SyntheticConsumer::StartBatch(std::span<const ipc::ReceivedFrame> frames) {
  if (config_.pipeline_depth <= 1) return ConsumeFrames(frames);
  if (static_cast<int>(started_.size()) >= config_.pipeline_depth) {
    return MakeError(StatusCode::kInternal, fmt::format("a batch started with {} already in flight", started_.size()));
  }
  if (config_.read_at_start) {
    VS_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadFrames(frames));
    started_lines_.push_back(std::move(lines));
  }
  started_.emplace_back(frames.begin(), frames.end());
  size_t started_frames = 0;
  for (const auto& batch : started_) started_frames += batch.size();
  max_started_frames_ = std::max(max_started_frames_, started_frames);
  return Status::Ok();
}

Status SyntheticConsumer::FinishBatch() {
  if (config_.pipeline_depth <= 1) return Status::Ok();
  if (started_.empty()) return MakeError(StatusCode::kInternal, "FinishBatch without a started batch");
  std::vector<ipc::ReceivedFrame> batch = std::move(started_.front());
  started_.pop_front();
  if (!config_.read_at_start) return ConsumeFrames(batch);
  // Read at StartBatch: the slots may hold other frames by now.
  std::vector<std::string> lines = std::move(started_lines_.front());
  started_lines_.pop_front();
  return WriteLines(batch, lines);
}

std::optional<int> SyntheticConsumer::BatchesDoneReading() {
  if (!config_.read_at_start || config_.pipeline_depth <= 1) return std::nullopt;
  return static_cast<int>(started_.size());
}

Status SyntheticConsumer::ConsumeFrames(std::span<const ipc::ReceivedFrame> frames) {
  VS_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadFrames(frames));
  return WriteLines(frames, lines);
}

Expected<std::vector<std::string>> SyntheticConsumer::ReadFrames(std::span<const ipc::ReceivedFrame> frames) {
  if (commits_running_.load() > 0) ++batches_during_commits_;
  std::set<int> decoders;
  for (const ipc::ReceivedFrame& frame : frames) decoders.insert(frame.decoder);
  max_batch_ = std::max(max_batch_, frames.size());
  max_decoders_in_batch_ = std::max(max_decoders_in_batch_, decoders.size());
  std::vector<std::string> lines;
  for (const ipc::ReceivedFrame& frame : frames) {
    const ipc::FrameDescriptor& d = frame.descriptor;
    if (d.video_id == config_.infer_poison && d.frame_index == 3) std::abort();  // a video that crashes inference
    lines.push_back(OutputLine(frame.view.info, FrameChecksum(frame.view)));
    if (config_.consume_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(config_.consume_delay_us));
  }
  return lines;
}

Status SyntheticConsumer::WriteLines(std::span<const ipc::ReceivedFrame> frames, const std::vector<std::string>& lines) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const ipc::FrameDescriptor& d = frames[i].descriptor;
    auto it = open_.find({d.video_id, d.attempt});
    if (it == open_.end()) {
      return MakeError(StatusCode::kInternal, fmt::format("frame of video {} attempt {} that never began", d.video_id, d.attempt));
    }
    std::fwrite(lines[i].data(), 1, lines[i].size(), it->second);
    ++frames_[{d.video_id, d.attempt}];
  }
  return Status::Ok();
}

ipc::VideoResult SyntheticConsumer::EndVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status) {
  auto it = open_.find({video_id, attempt});
  if (it == open_.end()) return {MakeError(StatusCode::kInternal, fmt::format("video {} never began", video_id)), ""};
  if (const int64_t pending = Pending(video_id, attempt); pending > 0) {
    return {MakeError(StatusCode::kInternal, fmt::format("video {} ended with {} of its frames in a batch not finished",
                                                         video_id, pending)), ""};
  }
  if (auto deferred = deferred_data_.find({video_id, attempt}); deferred != deferred_data_.end()) {
    std::fwrite(deferred->second.data(), 1, deferred->second.size(), it->second);
    deferred_data_.erase(deferred);
  }
  data_messages_.erase({video_id, attempt});
  const std::string temp = TempPath(video_id, attempt);
  bool closed = std::fclose(it->second) == 0;
  open_.erase(it);
  const int64_t frames = frames_[{video_id, attempt}];
  frames_.erase({video_id, attempt});
  std::remove(LiveMarkerPath(config_.out_dir, video_id).c_str());
  if (!producer_status.ok() || !closed) {
    std::remove(temp.c_str());
    return {producer_status.ok() ? MakeError(StatusCode::kIoError, fmt::format("writing {}", temp)) : producer_status, ""};
  }
  // The rename is the commit: a reader sees the whole file or none.
  const std::string final_path = OutputPath(config_.out_dir, video_id);
  if (std::rename(temp.c_str(), final_path.c_str()) != 0) {
    return {MakeError(StatusCode::kIoError, fmt::format("rename {} -> {}: {}", temp, final_path, std::strerror(errno))), ""};
  }
  return {Status::Ok(), SyntheticReport(video_id, frames)};
}

void SyntheticConsumer::CommitVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status, CommitDone done) {
  if (config_.commit_delay_ms <= 0) {
    done(EndVideo(video_id, attempt, producer_status));
    return;
  }
  auto it = open_.find({video_id, attempt});
  if (it == open_.end()) {
    done({MakeError(StatusCode::kInternal, fmt::format("video {} never began", video_id)), ""});
    return;
  }
  if (const int64_t pending = Pending(video_id, attempt); pending > 0) {
    done({MakeError(StatusCode::kInternal, fmt::format("video {} ended with {} of its frames in a batch not finished",
                                                       video_id, pending)), ""});
    return;
  }
  if (auto deferred = deferred_data_.find({video_id, attempt}); deferred != deferred_data_.end()) {
    std::fwrite(deferred->second.data(), 1, deferred->second.size(), it->second);
    deferred_data_.erase(deferred);
  }
  data_messages_.erase({video_id, attempt});
  FILE* file = it->second;
  open_.erase(it);
  const int64_t frames = frames_[{video_id, attempt}];
  frames_.erase({video_id, attempt});
  ++commits_running_;
  commit_threads_.emplace_back([this, file, frames, video_id, producer_status, temp = TempPath(video_id, attempt),
                                final_path = OutputPath(config_.out_dir, video_id), done = std::move(done)] {
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.commit_delay_ms));
    const bool closed = std::fclose(file) == 0;
    std::remove(LiveMarkerPath(config_.out_dir, video_id).c_str());
    ipc::VideoResult result;
    if (!producer_status.ok() || !closed) {
      std::remove(temp.c_str());
      result.status = producer_status.ok() ? MakeError(StatusCode::kIoError, fmt::format("writing {}", temp)) : producer_status;
    } else if (std::rename(temp.c_str(), final_path.c_str()) != 0) {
      result.status = MakeError(StatusCode::kIoError, fmt::format("rename {} -> {}: {}", temp, final_path, std::strerror(errno)));
    } else {
      result.report = SyntheticReport(video_id, frames);
    }
    --commits_running_;
    done(std::move(result));
  });
}

void SyntheticConsumer::AbandonVideo(uint64_t video_id, uint32_t attempt) {
  auto it = open_.find({video_id, attempt});
  if (it == open_.end()) return;
  std::fclose(it->second);
  open_.erase(it);
  frames_.erase({video_id, attempt});
  deferred_data_.erase({video_id, attempt});
  data_messages_.erase({video_id, attempt});
  std::remove(TempPath(video_id, attempt).c_str());
  std::remove(LiveMarkerPath(config_.out_dir, video_id).c_str());
}

}  // namespace vidscan::testing
