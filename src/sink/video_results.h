// Per-video outputs of `vidscan run`, in the video's own folder <out>/videos/<key>/ (the caller picks it):
//
//   detections.jsonl  one JSON object per analysed frame, in frame order (frames without boxes included):
//                     {"frame":12,"pts":0.48,"detections":[{"class":"person","class_id":0,"score":0.8731,
//                      "box":[x1,y1,x2,y2],"track_id":3}]}   (0-based frame; "track_id" only when tracked)
//   tracks.txt        MOTChallenge results, frame,id,x,y,w,h,score,-1,-1,-1 (1-based frame), tracked boxes only
//   summary.json      the video, its settings, frame counts and detection/track statistics
//
// Every number is printed with fixed formatting (boxes 2 decimals, scores 4, times to the microsecond) and
// summary.json holds no wall-clock time, so the same video with the same settings gives byte-identical
// files whether or not the run was interrupted and resumed.
//
// All three go through AtomicFile and appear together on Commit(), summary.json last: its presence means
// the video is complete. Open() first removes the three final files of an earlier attempt (summary.json
// first) and any ".partial" leftovers, so a folder never mixes a new detections.jsonl with an old
// summary.json. One writer per folder at a time (keys are unique within a job).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "decode/decoder.h"
#include "media/stream_info.h"
#include "sink/atomic_file.h"

namespace vidscan {

// One box in source-video pixels (corners).
struct OutputDetection {
  int class_id = 0;
  float score = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int64_t track_id = -1;  // -1: not tracked
};

struct FrameResult {
  int64_t frame_index = 0;  // 0-based display index in the video
  double pts_seconds = 0;
  std::vector<OutputDetection> detections;
};

struct VideoResultHeader {
  std::string path;  // the video as the job names it
  std::string key;   // its output folder's name
  std::vector<std::string> class_names;  // by class id; ids beyond the list are written "class_<id>"
  VideoStreamInfo info;
  std::string sampling;  // SamplingPolicy::ToString()
  std::string model;     // model name or file, as the job wants it recorded
};

// What the pipeline knows once the video's last frame went through.
struct VideoCompletion {
  DecodeCounters decode;          // FileDecodeReport::counters: frames decoded, errors, frames dropped for damage
  double decoded_video_seconds = 0;
  std::string decode_warning;     // e.g. the "corrupt data" message of a damaged file kept with its results
};

inline constexpr const char* kDetectionsFileName = "detections.jsonl";
inline constexpr const char* kTracksFileName = "tracks.txt";
inline constexpr const char* kSummaryFileName = "summary.json";

// Statistics of one track id over the frames Write() received.
struct TrackStats {
  int64_t first_frame = 0;  // 0-based frame index
  int64_t last_frame = 0;
  double first_pts = 0;
  double last_pts = 0;
  int64_t frames = 0;       // analysed frames in which the track had a box
};

class VideoResultWriter {
 public:
  // Creates video_dir (and parents) if missing and opens the three temp files.
  static Expected<VideoResultWriter> Open(const std::string& video_dir, VideoResultHeader header);
  VideoResultWriter(VideoResultWriter&&) noexcept;
  VideoResultWriter& operator=(VideoResultWriter&&) noexcept;
  ~VideoResultWriter();  // without Commit(): the temp files are removed, nothing appears

  // Once for EVERY analysed frame, also those without boxes (they count as analysed and get their line).
  // Frames must come in strictly increasing frame_index; boxes and scores must be finite.
  Status Write(const FrameResult& frame);
  // Writes summary.json and commits detections.jsonl, tracks.txt, summary.json in that order.
  Status Commit(const VideoCompletion& done);

  // The summary Commit() writes (exposed for the job summary and tests).
  std::string SummaryJson(const VideoCompletion& done) const;
  const std::string& video_dir() const;
  int64_t frames_written() const;

 private:
  struct State;
  explicit VideoResultWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The detections.jsonl line (with '\n') for one frame: exposed for tests and tools.
std::string FormatDetectionsLine(const FrameResult& frame, const std::vector<std::string>& class_names);

// Seconds with up to 6 decimals, trailing zeros dropped ("0.48", "12.0", "0.033367").
std::string FormatSeconds(double seconds);

}  // namespace vidscan
