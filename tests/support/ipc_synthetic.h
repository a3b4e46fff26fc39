// Synthetic stages for the multi-process tests: a "decode" producer writing deterministic NV12 frames of
// several videos into its slots, and an "infer" consumer writing one checksum line per frame into a
// temp file it renames at the video's end. The test computes the same lines directly, so an output
// proves the consumer read exactly the bytes the producer wrote, every frame, in order.
//
// Configured through the environment, since the workers are separate processes (tests/support/
// ipc_test_worker.cpp is their main).
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <deque>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipc/worker.h"

namespace vidscan::testing {

inline constexpr int kSyntheticWidth = 64;
inline constexpr int kSyntheticHeight = 36;

struct SyntheticConfig {
  std::string out_dir;
  uint64_t decode_poison = 0;  // the producer aborts in this video (0: none)
  uint64_t infer_poison = 0;   // the consumer aborts in this video (0: none)
  int produce_delay_us = 0;    // per frame
  int consume_delay_us = 0;    // per frame: a slow consumer
  int pipeline_depth = 1;      // > 1: the consumer pipelines (StartBatch/FinishBatch), reading at finish
  int commit_delay_ms = 0;     // > 0: the consumer commits in the background (CommitVideo), this slowly
  bool read_at_start = false;  // pipelined: pixels read at StartBatch, and BatchesDoneReading says so

  static SyntheticConfig FromEnvironment();
  std::vector<std::pair<std::string, std::string>> Environment() const;
};

// Frames of video `id` (ids start at 1): 12 to 31, different per video.
int SyntheticFrameCount(uint64_t video_id);
// Writes frame `frame` of video `video_id` (packed NV12, pitch kSyntheticWidth).
void FillSyntheticFrame(uint64_t video_id, int64_t frame, uint8_t* luma, uint8_t* chroma, int pitch);
// FNV-1a over the visible bytes of both planes.
uint32_t FrameChecksum(const FrameView& frame);
// The line the consumer writes for a frame.
std::string OutputLine(const FrameInfo& info, uint32_t checksum);
// The data messages the producer sends before the first and after the last frame of a video (longer than
// a descriptor's message, so they travel in several chunks); the consumer writes each as a line.
std::string SyntheticHeader(uint64_t video_id);
std::string SyntheticTrailer(uint64_t video_id);
// The report the consumer gives the supervisor at a video's end (longer than one control message).
std::string SyntheticReport(uint64_t video_id, int64_t frames);
// What an undisturbed consumer writes for video `video_id`, computed here without any IPC.
std::string ExpectedSyntheticOutput(uint64_t video_id);
std::string OutputPath(const std::string& dir, uint64_t video_id);

class SyntheticProducer final : public ipc::VideoProducer {
 public:
  explicit SyntheticProducer(SyntheticConfig config) : config_(std::move(config)) {}
  Status Produce(uint64_t video_id, ipc::FrameWriter& out) override;

 private:
  SyntheticConfig config_;
};

class SyntheticConsumer final : public ipc::VideoConsumer {
 public:
  explicit SyntheticConsumer(SyntheticConfig config) : config_(std::move(config)) {}
  ~SyntheticConsumer() override;
  Status BeginVideo(uint64_t video_id, uint32_t attempt) override;
  Status VideoData(uint64_t video_id, uint32_t attempt, std::string_view data) override;
  Status ConsumeFrames(std::span<const ipc::ReceivedFrame> frames) override;
  // Pipelined (pipeline_depth > 1): a started batch is only remembered; its pixels are read at
  // FinishBatch, so a slot handed back too early shows as a wrong checksum. EndVideo fails if a started
  // batch still holds a frame of the video.
  int batches_in_flight() const override { return std::max(1, config_.pipeline_depth); }
  Status StartBatch(std::span<const ipc::ReceivedFrame> frames) override;
  Status FinishBatch() override;
  // read_at_start: every started batch is read (its slots may go back before FinishBatch).
  std::optional<int> BatchesDoneReading() override;
  ipc::VideoResult EndVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status) override;
  // commit_delay_ms > 0: the bookkeeping here, then the file is closed and renamed on a thread of its own
  // after the delay, and `done` called from there.
  void CommitVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status, CommitDone done) override;
  void AbandonVideo(uint64_t video_id, uint32_t attempt) override;

 private:
  std::string TempPath(uint64_t video_id, uint32_t attempt) const;
  int64_t Pending(uint64_t video_id, uint32_t attempt) const;  // its frames in started, unfinished batches

  SyntheticConfig config_;
  std::map<std::pair<uint64_t, uint32_t>, FILE*> open_;
  std::map<std::pair<uint64_t, uint32_t>, int64_t> frames_;
  // Reads a batch's pixels: the output line of each frame.
  Expected<std::vector<std::string>> ReadFrames(std::span<const ipc::ReceivedFrame> frames);
  Status WriteLines(std::span<const ipc::ReceivedFrame> frames, const std::vector<std::string>& lines);

  std::deque<std::vector<ipc::ReceivedFrame>> started_;
  std::deque<std::vector<std::string>> started_lines_;  // read_at_start: the started batches' lines
  size_t max_started_frames_ = 0;                        // most frames in started, unfinished batches
  // Pipelined: data messages after the first (the trailer) are written at EndVideo, since frames sent
  // before them may not be finished yet.
  std::map<std::pair<uint64_t, uint32_t>, std::string> deferred_data_;
  std::map<std::pair<uint64_t, uint32_t>, int> data_messages_;
  // Written to <out_dir>/infer-stats.<pid> when the worker ends: the largest batch, and the most decoders
  // (slot pools) one batch drew frames from.
  size_t max_batch_ = 0;
  size_t max_decoders_in_batch_ = 0;
  // Background commits: running now, and the batches started while one was.
  std::atomic<int> commits_running_{0};
  size_t batches_during_commits_ = 0;
  std::vector<std::thread> commit_threads_;
};

struct SyntheticInferStats {
  size_t max_batch = 0;
  size_t max_decoders_in_batch = 0;
  size_t batches_during_commits = 0;  // summed
  size_t max_started_frames = 0;      // most frames in started, unfinished batches of one worker
};
// The stats every infer worker of a run in `dir` wrote, combined (maxima).
SyntheticInferStats ReadInferStats(const std::string& dir);

}  // namespace vidscan::testing
