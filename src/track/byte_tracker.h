// ByteTrack (Zhang et al., ECCV 2022) for one stream: associate every detection box, high and low score,
// to Kalman-predicted tracks by IoU in two stages. Follows the reference implementation
// (yolox/tracker/byte_tracker.py) and its default parameters; differences are listed in
// docs/tracking.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "track/kalman_filter.h"
#include "track/linear_assignment.h"

namespace vidscan::track {

// Axis-aligned box, top-left corner and size, in pixels.
struct BoxTlwh {
  float x = 0, y = 0, w = 0, h = 0;
};

struct Detection {
  BoxTlwh box;
  float score = 0;
};

struct ByteTrackParams {
  float track_thresh = 0.6f;       // score > this: high-score set (first association)
  float low_thresh = 0.1f;         // low < score <= track_thresh: second association only
  float new_track_thresh = 0.7f;   // an unmatched high-score box starts a track only above this
                                   // (the reference uses track_thresh + 0.1)
  float match_thresh = 0.8f;       // first association: max (score-fused) IoU distance
  float low_match_thresh = 0.5f;   // second association: max IoU distance
  float unconfirmed_match_thresh = 0.7f;  // one-frame-old tracks: max (score-fused) IoU distance
  float duplicate_iou_distance = 0.15f;   // tracked vs lost pairs closer than this: drop the younger
  bool fuse_score = true;          // IoU similarity times detection score (reference's mot20=False path)
  int track_buffer = 30;           // frames a lost track is kept, at 30 fps
  double frame_rate = 30.0;        // frames per second of the frame indices passed to Update
  // Lost tracks are kept for int(frame_rate / 30 * track_buffer) frames of the stream (not updates).
  int MaxFramesLost() const { return static_cast<int>(frame_rate / 30.0 * track_buffer); }
};

struct TrackedObject {
  int64_t track_id = 0;     // 1, 2, ... in order of confirmation
  BoxTlwh box;              // Kalman-filtered box after this frame's update
  float score = 0;          // score of the detection matched this frame
  int detection_index = -1; // index into this frame's detections of the matched box
};

class ByteTracker {
 public:
  explicit ByteTracker(const ByteTrackParams& params = {});

  // One analysed frame. frame_index counts the stream's frames (at params.frame_rate) and must increase;
  // it may skip frames (sampled analysis): the Kalman filter then predicts once per elapsed frame, and
  // the lost buffer counts elapsed frames, so behaviour matches a detector that saw nothing on the
  // skipped frames, except that tracks are not marked lost for them. `out` receives the confirmed tracks
  // matched in this frame (the reference's output_stracks).
  Status Update(int64_t frame_index, std::span<const Detection> detections, std::vector<TrackedObject>* out);

  const ByteTrackParams& params() const { return params_; }
  // Tracks currently held (tracked, unconfirmed and lost): for tests and memory accounting.
  size_t live_tracks() const { return tracks_.size(); }

 private:
  enum class State : uint8_t { kTracked, kLost };
  struct Track {
    KalmanState kf;
    int64_t id = 0;          // 0 until confirmed
    int64_t start_frame = 0;
    int64_t last_frame = 0;  // last frame matched (reference: frame_id / end_frame)
    float score = 0;
    int detection_index = -1;
    State state = State::kTracked;
    bool confirmed = false;  // reference: is_activated
  };

  void BuildIouCost(std::span<const int> track_indices, std::span<const Detection> dets,
                    std::span<const int> det_indices, bool fuse_score);
  void MatchTrack(Track& t, const Detection& d, int det_index, int64_t frame);

  ByteTrackParams params_;
  KalmanFilterXyah kf_;
  AssignmentSolver solver_;
  std::vector<Track> tracks_;
  int64_t next_id_ = 1;
  int64_t last_frame_ = 0;
  bool first_update_ = true;
  // Per-frame scratch, kept to avoid allocation.
  std::vector<int> high_, low_, pool_, unconfirmed_, remain_tracked_, remain_high_;
  std::vector<char> matched_, remove_, lost_before_, duplicate_;
  std::vector<float> cost_;
  std::vector<BoxTlwh> predicted_;  // per track: predicted box, then the box after this frame's update
};

// IoU of two boxes (continuous coordinates: no +1 pixel convention).
float Iou(const BoxTlwh& a, const BoxTlwh& b);

}  // namespace vidscan::track
