#include "track/byte_tracker.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace vidscan::track {
namespace {

Xyah ToXyah(const BoxTlwh& b) {
  return {b.x + b.w / 2.0, b.y + b.h / 2.0, static_cast<double>(b.w) / b.h, static_cast<double>(b.h)};
}

BoxTlwh ToTlwh(const KalmanState& s) {
  const double w = s.mean[2] * s.mean[3], h = s.mean[3];
  return {static_cast<float>(s.mean[0] - w / 2), static_cast<float>(s.mean[1] - h / 2), static_cast<float>(w),
          static_cast<float>(h)};
}

bool Usable(const Detection& d) {
  return std::isfinite(d.box.x) && std::isfinite(d.box.y) && std::isfinite(d.box.w) && std::isfinite(d.box.h) &&
         d.box.w > 0 && d.box.h > 0 && std::isfinite(d.score);
}

}  // namespace

float Iou(const BoxTlwh& a, const BoxTlwh& b) {
  const float ix = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  const float iy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  if (ix <= 0 || iy <= 0) return 0.f;
  const float inter = ix * iy;
  const float uni = a.w * a.h + b.w * b.h - inter;
  return uni > 0 ? inter / uni : 0.f;
}

ByteTracker::ByteTracker(const ByteTrackParams& params) : params_(params) {}

void ByteTracker::BuildIouCost(std::span<const int> track_indices, std::span<const Detection> dets,
                               std::span<const int> det_indices, bool fuse_score) {
  cost_.resize(track_indices.size() * det_indices.size());
  float* out = cost_.data();
  for (int t : track_indices) {
    const BoxTlwh& tb = predicted_[t];
    for (int d : det_indices) {
      const float iou = Iou(tb, dets[d].box);
      *out++ = 1.f - (fuse_score ? iou * dets[d].score : iou);
    }
  }
}

void ByteTracker::MatchTrack(Track& t, const Detection& d, int det_index, int64_t frame) {
  kf_.Update(t.kf, ToXyah(d.box));
  t.state = State::kTracked;
  t.confirmed = true;
  if (t.id == 0) t.id = next_id_++;
  t.last_frame = frame;
  t.score = d.score;
  t.detection_index = det_index;
}

Status ByteTracker::Update(int64_t frame_index, std::span<const Detection> dets, std::vector<TrackedObject>* out) {
  out->clear();
  if (!first_update_ && frame_index <= last_frame_) {
    return MakeError(StatusCode::kInvalidArgument,
                     "ByteTracker::Update: frame index " + std::to_string(frame_index) +
                         " does not follow the previous one (" + std::to_string(last_frame_) + ")");
  }
  const int max_lost = params_.MaxFramesLost();
  // Predict once per elapsed frame; past the lost buffer every unmatched track is dropped anyway, so the
  // steps are capped there rather than spent on an unbounded gap.
  const int64_t gap = first_update_ ? 1 : frame_index - last_frame_;
  const int steps = static_cast<int>(std::min<int64_t>(gap, max_lost + 1));

  high_.clear();
  low_.clear();
  for (int i = 0; i < static_cast<int>(dets.size()); ++i) {
    if (!Usable(dets[i])) continue;
    const float s = dets[i].score;
    if (s > params_.track_thresh) {
      high_.push_back(i);
    } else if (s > params_.low_thresh && s < params_.track_thresh) {
      low_.push_back(i);
    }
  }

  // Pool for the first association: confirmed tracked + lost tracks, Kalman-predicted to this frame.
  // Unconfirmed tracks are not predicted (as in the reference): they have no velocity yet.
  const int n_tracks = static_cast<int>(tracks_.size());
  pool_.clear();
  unconfirmed_.clear();
  predicted_.resize(n_tracks);
  matched_.assign(n_tracks, 0);
  remove_.assign(n_tracks, 0);
  lost_before_.assign(n_tracks, 0);
  for (int t = 0; t < n_tracks; ++t) {
    Track& tr = tracks_[t];
    lost_before_[t] = tr.state == State::kLost;
    if (tr.state == State::kTracked && !tr.confirmed) {
      unconfirmed_.push_back(t);
    } else {
      pool_.push_back(t);
      for (int k = 0; k < steps; ++k) {
        if (tr.state != State::kTracked) tr.kf.mean[7] = 0;  // a lost box keeps its size
        kf_.Predict(tr.kf);
      }
    }
    predicted_[t] = ToTlwh(tr.kf);
  }

  // First association: high-score boxes to the pool, score-fused IoU distance.
  BuildIouCost(pool_, dets, high_, params_.fuse_score);
  const Assignment& first = solver_.Solve(cost_, static_cast<int>(pool_.size()), static_cast<int>(high_.size()),
                                          params_.match_thresh);
  remain_high_.clear();
  for (size_t j = 0; j < high_.size(); ++j) {
    if (first.col_to_row[j] < 0) remain_high_.push_back(high_[j]);
  }
  remain_tracked_.clear();
  for (size_t i = 0; i < pool_.size(); ++i) {
    const int t = pool_[i];
    if (int j = first.row_to_col[i]; j >= 0) {
      MatchTrack(tracks_[t], dets[high_[j]], high_[j], frame_index);
      matched_[t] = 1;
    } else if (tracks_[t].state == State::kTracked) {
      remain_tracked_.push_back(t);
    }
  }

  // Second association: low-score boxes to the still-unmatched tracked tracks, plain IoU distance.
  BuildIouCost(remain_tracked_, dets, low_, false);
  const Assignment& second = solver_.Solve(cost_, static_cast<int>(remain_tracked_.size()),
                                           static_cast<int>(low_.size()), params_.low_match_thresh);
  for (size_t i = 0; i < remain_tracked_.size(); ++i) {
    const int t = remain_tracked_[i];
    if (int j = second.row_to_col[i]; j >= 0) {
      MatchTrack(tracks_[t], dets[low_[j]], low_[j], frame_index);
      matched_[t] = 1;
    } else {
      tracks_[t].state = State::kLost;
    }
  }

  // Lost tracks past the buffer (only those lost before this frame, as in the reference).
  for (int t = 0; t < n_tracks; ++t) {
    if (lost_before_[t] && !matched_[t] && frame_index - tracks_[t].last_frame > max_lost) remove_[t] = 1;
  }

  // Unconfirmed (one-frame-old) tracks take the high-score boxes left over; unmatched ones are dropped.
  BuildIouCost(unconfirmed_, dets, remain_high_, params_.fuse_score);
  const Assignment& third = solver_.Solve(cost_, static_cast<int>(unconfirmed_.size()),
                                          static_cast<int>(remain_high_.size()), params_.unconfirmed_match_thresh);
  for (size_t i = 0; i < unconfirmed_.size(); ++i) {
    const int t = unconfirmed_[i];
    if (int j = third.row_to_col[i]; j >= 0) {
      MatchTrack(tracks_[t], dets[remain_high_[j]], remain_high_[j], frame_index);
      matched_[t] = 1;
    } else {
      remove_[t] = 1;
    }
  }

  // New tracks from the high-score boxes nobody took, if confident enough. Only the first frame's tracks
  // are confirmed at once; later ones need a second match.
  for (size_t j = 0; j < remain_high_.size(); ++j) {
    if (third.col_to_row[j] >= 0) continue;
    const Detection& d = dets[remain_high_[j]];
    if (d.score < params_.new_track_thresh) continue;
    Track tr;
    tr.kf = kf_.Initiate(ToXyah(d.box));
    tr.start_frame = tr.last_frame = frame_index;
    tr.score = d.score;
    tr.detection_index = remain_high_[j];
    tr.state = State::kTracked;
    tr.confirmed = first_update_;
    if (tr.confirmed) tr.id = next_id_++;
    tracks_.push_back(tr);
    remove_.push_back(0);
  }

  // Duplicates: a tracked and a lost track on the same spot; drop the one tracked for a shorter time
  // (the tracked one on a tie). Every pair is judged on the state before any drop, as in the reference.
  const int n_all = static_cast<int>(tracks_.size());
  duplicate_.assign(n_all, 0);
  predicted_.resize(n_all);
  for (int t = 0; t < n_all; ++t) predicted_[t] = ToTlwh(tracks_[t].kf);
  for (int a = 0; a < n_all; ++a) {
    if (remove_[a] || tracks_[a].state != State::kTracked) continue;
    for (int b = 0; b < n_all; ++b) {
      if (remove_[b] || tracks_[b].state != State::kLost) continue;
      if (1.f - Iou(predicted_[a], predicted_[b]) >= params_.duplicate_iou_distance) continue;
      const int64_t age_a = tracks_[a].last_frame - tracks_[a].start_frame;
      const int64_t age_b = tracks_[b].last_frame - tracks_[b].start_frame;
      duplicate_[age_a > age_b ? b : a] = 1;
    }
  }

  size_t kept = 0;
  for (int t = 0; t < n_all; ++t) {
    if (remove_[t] || duplicate_[t]) continue;
    const Track& tr = tracks_[t];
    if (tr.state == State::kTracked && tr.confirmed && tr.last_frame == frame_index) {
      out->push_back({tr.id, predicted_[t], tr.score, tr.detection_index});
    }
    if (kept != static_cast<size_t>(t)) tracks_[kept] = tr;
    ++kept;
  }
  tracks_.resize(kept);
  last_frame_ = frame_index;
  first_update_ = false;
  return Status::Ok();
}

}  // namespace vidscan::track
