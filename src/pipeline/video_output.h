// One video's way from analysed frames to its committed output folder: ByteTrack per class (track ids unique
// within the video), the VideoResultWriter, and the rule that says whether the video is done or failed.
// The single-process runner (output threads) and the multi-process infer worker both use it, which is what
// makes their per-video outputs byte-identical.
//
//   VideoOutput out(settings);
//   out.Open(stream_info);                       // when the decoder opened the stream (never: see Finish)
//   out.AddFrame(index, pts, detections) ...     // every analysed frame, in increasing frame index
//   VideoVerdict verdict = out.Finish(report);   // commits the files, or says why the video failed
//
// Opening the writer removes an earlier attempt's files (complete or partial) from the folder, so a video
// re-run after a crash restarts cleanly. Destroying a VideoOutput that was not finished removes its
// temporary files and commits nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "decode/decoder.h"
#include "detect/detection.h"
#include "media/stream_info.h"
#include "sink/video_results.h"
#include "track/byte_tracker.h"

namespace vidscan {

struct VideoOutputSettings {
  std::string video_dir;  // <out>/videos/<key>; empty: results are tracked and counted, nothing is written
  std::string path;       // the video as the job names it
  std::string key;
  std::string sampling;   // as summary.json records it
  std::string model_name;
  std::vector<std::string> class_names;
  bool track = true;
  track::ByteTrackParams tracker;  // frame_rate is taken from the stream
};

// How a video ended.
struct VideoVerdict {
  bool done = false;
  std::string error;          // not done: why
  std::string warning;        // done although the stream was damaged: the decoder's error
  int64_t frames_analysed = 0;
  // Video time after the last analysed frame (the frames decoded but not sampled at the end), for the
  // realtime accounting that AddFrame's return values started.
  double trailing_video_seconds = 0;
};

// A damaged stream whose good part was decoded is a result with a warning; any other decoder error fails
// the video.
bool UsableDespiteError(const FileDecodeReport& report);

class VideoOutput {
 public:
  explicit VideoOutput(VideoOutputSettings settings);
  VideoOutput(VideoOutput&&) noexcept = default;
  VideoOutput& operator=(VideoOutput&&) noexcept = default;

  // The stream is open: opens the writer (an error is kept and fails the video at Finish).
  void Open(const VideoStreamInfo& info);
  // One analysed frame. Returns the seconds of video it advances the analysed span by (frame steps over
  // the stream's frame rate; 0 when the rate is unknown).
  double AddFrame(int64_t frame_index, double pts_seconds, const FrameDetections& detections);
  // The decoder is done with the video: decides, and commits the files when the video is done.
  VideoVerdict Finish(const FileDecodeReport& report);

  bool opened() const { return opened_; }
  int64_t frames_analysed() const { return frames_analysed_; }
  const VideoOutputSettings& settings() const { return settings_; }

 private:
  VideoOutputSettings settings_;
  bool opened_ = false;
  std::optional<VideoResultWriter> writer_;
  Status writer_error_;
  double fps_ = 0;
  std::map<int, track::ByteTracker> trackers_;            // per class
  std::map<std::pair<int, int64_t>, int64_t> track_ids_;  // (class, tracker id) -> id unique in the video
  int64_t next_track_id_ = 1;
  int64_t last_frame_index_ = -1;
  int64_t frames_analysed_ = 0;
  // Scratch, kept to avoid allocations per frame.
  std::vector<track::Detection> class_boxes_;
  std::vector<track::TrackedObject> tracked_;
};

}  // namespace vidscan
