#include "pipeline/video_output.h"

#include "core/log.h"

namespace vidscan {

bool UsableDespiteError(const FileDecodeReport& report) {
  return report.status.code() == StatusCode::kCorruptData && report.counters.frames_delivered > 0;
}

VideoOutput::VideoOutput(VideoOutputSettings settings) : settings_(std::move(settings)) {}

void VideoOutput::Open(const VideoStreamInfo& info) {
  if (opened_) return;
  opened_ = true;
  fps_ = info.fps;
  if (settings_.video_dir.empty()) return;
  VideoResultHeader header;
  header.path = settings_.path;
  header.key = settings_.key;
  header.class_names = settings_.class_names;
  header.info = info;
  header.sampling = settings_.sampling;
  header.model = settings_.model_name;
  auto writer = VideoResultWriter::Open(settings_.video_dir, std::move(header));
  if (writer.ok()) {
    writer_.emplace(std::move(*writer));
  } else {
    writer_error_ = writer.status();
  }
}

double VideoOutput::AddFrame(int64_t frame_index, double pts_seconds, const FrameDetections& detections) {
  const int64_t step = last_frame_index_ < 0 ? frame_index + 1 : frame_index - last_frame_index_;
  last_frame_index_ = frame_index;
  frames_analysed_ += 1;

  FrameResult result;
  result.frame_index = frame_index;
  result.pts_seconds = pts_seconds;
  result.detections.reserve(detections.size());
  for (const Detection& d : detections) {
    result.detections.push_back(OutputDetection{d.class_id, d.score, d.x1, d.y1, d.x2, d.y2, -1});
  }
  if (settings_.track) {
    // One tracker per class: a person box must never continue a bag's track.
    std::map<int, std::vector<int>> by_class;
    for (size_t i = 0; i < detections.size(); ++i) by_class[detections[i].class_id].push_back(static_cast<int>(i));
    // Trackers of classes absent in this frame still age their tracks.
    for (auto& [class_id, tracker] : trackers_) by_class.try_emplace(class_id);
    for (auto& [class_id, indices] : by_class) {
      auto it = trackers_.find(class_id);
      if (it == trackers_.end()) {
        track::ByteTrackParams params = settings_.tracker;
        params.frame_rate = fps_ > 0 ? fps_ : 30.0;
        it = trackers_.emplace(class_id, track::ByteTracker(params)).first;
      }
      class_boxes_.clear();
      for (int i : indices) {
        const Detection& d = detections[static_cast<size_t>(i)];
        class_boxes_.push_back({{d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1}, d.score});
      }
      if (Status st = it->second.Update(frame_index, class_boxes_, &tracked_); !st.ok()) {
        spdlog::warn("tracker: {}", st.ToString());
        continue;
      }
      for (const track::TrackedObject& t : tracked_) {
        auto [id, inserted] = track_ids_.try_emplace({class_id, t.track_id}, next_track_id_);
        if (inserted) ++next_track_id_;
        result.detections[static_cast<size_t>(indices[static_cast<size_t>(t.detection_index)])].track_id = id->second;
      }
    }
  }
  if (writer_ && writer_error_.ok()) writer_error_ = writer_->Write(result);
  return fps_ > 0 ? step / fps_ : 0;
}

VideoVerdict VideoOutput::Finish(const FileDecodeReport& report) {
  VideoVerdict verdict;
  verdict.frames_analysed = frames_analysed_;
  const bool usable = report.status.ok() || UsableDespiteError(report);
  if (!usable) {
    verdict.error = report.status.ToString();
  } else if (!opened_) {
    verdict.error = "internal: no results for the video";
  } else if (!writer_error_.ok()) {
    verdict.error = writer_error_.ToString();
  } else if (writer_) {
    VideoCompletion done;
    done.decode = report.counters;
    done.decoded_video_seconds = report.decoded_video_seconds;
    if (!report.status.ok()) done.decode_warning = report.status.ToString();
    if (Status st = writer_->Commit(done); !st.ok()) verdict.error = st.ToString();
  }
  if (fps_ > 0 && report.counters.frames_decoded > last_frame_index_ + 1) {
    verdict.trailing_video_seconds = (report.counters.frames_decoded - last_frame_index_ - 1) / fps_;
  }
  verdict.done = verdict.error.empty();
  if (verdict.done && !report.status.ok()) verdict.warning = report.status.ToString();
  return verdict;
}

}  // namespace vidscan
