#include "sink/video_results.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "sink/mot_format.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {

using OrderedJson = nlohmann::ordered_json;

// Fixed decimals, with "-0.00" printed as "0.00": a box edge at -0.001 px and one at +0.001 px are the same
// number to the reader.
std::string FormatFixed(double value, int decimals) {
  std::string s = fmt::format("{:.{}f}", value, decimals);
  if (s.front() == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

// Rounded so that nlohmann's shortest round-trip printing gives a short, stable number.
double Rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  double r = std::round(value * scale) / scale;
  return r == 0 ? 0.0 : r;  // no -0
}

std::string ClassName(const std::vector<std::string>& names, int class_id) {
  if (class_id >= 0 && static_cast<size_t>(class_id) < names.size()) return names[class_id];
  return fmt::format("class_{}", class_id);
}

}  // namespace

std::string FormatSeconds(double seconds) {
  std::string s = FormatFixed(seconds, 6);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.push_back('0');
  return s;
}

std::string FormatDetectionsLine(const FrameResult& frame, const std::vector<std::string>& class_names) {
  std::string line = fmt::format("{{\"frame\":{},\"pts\":{},\"detections\":[", frame.frame_index,
                                 FormatSeconds(frame.pts_seconds));
  for (size_t i = 0; i < frame.detections.size(); ++i) {
    const OutputDetection& d = frame.detections[i];
    if (i) line += ',';
    // nlohmann escapes the name (quotes, backslashes, control characters) exactly as JSON wants.
    line += fmt::format("{{\"class\":{},\"class_id\":{},\"score\":{},\"box\":[{},{},{},{}]",
                        nlohmann::json(ClassName(class_names, d.class_id)).dump(), d.class_id,
                        FormatFixed(d.score, 4), FormatFixed(d.x1, 2), FormatFixed(d.y1, 2), FormatFixed(d.x2, 2),
                        FormatFixed(d.y2, 2));
    if (d.track_id >= 0) line += fmt::format(",\"track_id\":{}", d.track_id);
    line += '}';
  }
  line += "]}\n";
  return line;
}

struct VideoResultWriter::State {
  State(std::string dir_in, VideoResultHeader header_in, AtomicFile detections_in, AtomicFile tracks_in)
      : dir(std::move(dir_in)),
        header(std::move(header_in)),
        detections(std::move(detections_in)),
        tracks(std::move(tracks_in)) {}

  std::string dir;
  VideoResultHeader header;
  AtomicFile detections;
  AtomicFile tracks;
  int64_t last_frame = -1;
  int64_t frames_written = 0;
  int64_t frames_with_detections = 0;
  int64_t total_detections = 0;
  std::map<int, int64_t> detections_per_class;  // by class id: a stable order
  std::map<int64_t, TrackStats> tracks_by_id;
  bool committed = false;
};

VideoResultWriter::VideoResultWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
VideoResultWriter::VideoResultWriter(VideoResultWriter&&) noexcept = default;
VideoResultWriter& VideoResultWriter::operator=(VideoResultWriter&&) noexcept = default;
VideoResultWriter::~VideoResultWriter() = default;  // the AtomicFiles remove their temp files

const std::string& VideoResultWriter::video_dir() const { return state_->dir; }
int64_t VideoResultWriter::frames_written() const { return state_->frames_written; }

Expected<VideoResultWriter> VideoResultWriter::Open(const std::string& video_dir, VideoResultHeader header) {
  std::error_code ec;
  fs::create_directories(video_dir, ec);
  if (ec) {
    return MakeError(StatusCode::kIoError, fmt::format("{}: cannot create directory: {}", video_dir, ec.message()));
  }
  // An earlier attempt's files go first, summary.json before the others, and the removal is made durable
  // before new files can appear: the folder must never show an old "complete" mark over new data.
  bool removed_any = false;
  for (const char* name : {kSummaryFileName, kDetectionsFileName, kTracksFileName}) {
    const fs::path p = fs::path(video_dir) / name;
    removed_any |= fs::remove(p, ec);
    if (ec) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot remove: {}", p.string(), ec.message()));
  }
  if (removed_any) VS_RETURN_IF_ERROR(SyncDirectory(video_dir));
  // The folder is this video's alone, so any .partial file in it is a killed attempt's leftover.
  VS_ASSIGN_OR_RETURN(int stale, RemoveStalePartialFiles(video_dir));
  (void)stale;

  VS_ASSIGN_OR_RETURN(AtomicFile detections, AtomicFile::Create((fs::path(video_dir) / kDetectionsFileName).string()));
  VS_ASSIGN_OR_RETURN(AtomicFile tracks, AtomicFile::Create((fs::path(video_dir) / kTracksFileName).string()));
  auto state = std::make_unique<State>(video_dir, std::move(header), std::move(detections), std::move(tracks));
  return VideoResultWriter(std::move(state));
}

Status VideoResultWriter::Write(const FrameResult& frame) {
  State& s = *state_;
  if (s.committed) return MakeError(StatusCode::kInternal, fmt::format("{}: write after commit", s.dir));
  if (frame.frame_index <= s.last_frame) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{}: frame {} written after frame {} (frames must come in increasing order)",
                                 s.header.path, frame.frame_index, s.last_frame));
  }
  if (!std::isfinite(frame.pts_seconds)) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{}: frame {}: time is not a finite number", s.header.path, frame.frame_index));
  }
  for (const OutputDetection& d : frame.detections) {
    if (!std::isfinite(d.score) || !std::isfinite(d.x1) || !std::isfinite(d.y1) || !std::isfinite(d.x2) ||
        !std::isfinite(d.y2) || d.class_id < 0) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("{}: frame {}: detection with a non-finite value or negative class id",
                                   s.header.path, frame.frame_index));
    }
  }
  VS_RETURN_IF_ERROR(s.detections.Write(FormatDetectionsLine(frame, s.header.class_names)));

  std::string mot_lines;
  for (const OutputDetection& d : frame.detections) {
    ++s.detections_per_class[d.class_id];
    if (d.track_id < 0) continue;
    mot_lines += FormatMotLine(MotRecord{.frame = frame.frame_index + 1,
                                         .id = d.track_id,
                                         .x = d.x1,
                                         .y = d.y1,
                                         .w = d.x2 - d.x1,
                                         .h = d.y2 - d.y1,
                                         .score = d.score});
    auto [it, inserted] = s.tracks_by_id.try_emplace(d.track_id);
    TrackStats& t = it->second;
    if (inserted) {
      t.first_frame = frame.frame_index;
      t.first_pts = frame.pts_seconds;
    }
    // A tracker reports an id at most once per frame; a second box with the same id in one frame is still
    // one frame of that track.
    if (inserted || t.last_frame != frame.frame_index) ++t.frames;
    t.last_frame = frame.frame_index;
    t.last_pts = frame.pts_seconds;
  }
  if (!mot_lines.empty()) VS_RETURN_IF_ERROR(s.tracks.Write(mot_lines));

  s.last_frame = frame.frame_index;
  ++s.frames_written;
  s.total_detections += static_cast<int64_t>(frame.detections.size());
  if (!frame.detections.empty()) ++s.frames_with_detections;
  return Status::Ok();
}

std::string VideoResultWriter::SummaryJson(const VideoCompletion& done) const {
  const State& s = *state_;
  const VideoStreamInfo& info = s.header.info;
  OrderedJson j;
  j["path"] = s.header.path;
  j["key"] = s.header.key;
  j["video"] = OrderedJson{{"container", info.container},
                           {"codec", info.codec_name},
                           {"profile", info.profile},
                           {"width", info.width},
                           {"height", info.height},
                           {"bit_depth", info.bit_depth},
                           {"fps", Rounded(info.fps, 6)},
                           {"duration_seconds", Rounded(info.duration_seconds, 6)}};
  j["sampling"] = s.header.sampling;
  j["model"] = s.header.model;
  j["frames_decoded"] = done.decode.frames_decoded;
  j["frames_analysed"] = s.frames_written;
  j["frames_with_detections"] = s.frames_with_detections;
  j["decoded_video_seconds"] = Rounded(done.decoded_video_seconds, 6);
  j["decode"] = OrderedJson{{"packets", done.decode.packets},
                            {"decode_errors", done.decode.decode_errors},
                            {"frames_corrupt", done.decode.frames_corrupt},
                            {"frames_skipped", done.decode.frames_skipped},
                            {"packets_skipped", done.decode.packets_skipped},
                            {"warning", done.decode_warning}};

  OrderedJson per_class = OrderedJson::object();
  for (const auto& [class_id, count] : s.detections_per_class) {
    std::string name = ClassName(s.header.class_names, class_id);
    per_class[name] = per_class.value(name, int64_t{0}) + count;
  }
  j["detections"] = OrderedJson{{"total", s.total_detections}, {"per_class", std::move(per_class)}};

  std::vector<int64_t> lengths;
  OrderedJson track_list = OrderedJson::array();
  for (const auto& [id, t] : s.tracks_by_id) {
    lengths.push_back(t.frames);
    track_list.push_back(OrderedJson{{"id", id},
                                     {"first_frame", t.first_frame},
                                     {"last_frame", t.last_frame},
                                     {"first_pts", Rounded(t.first_pts, 6)},
                                     {"last_pts", Rounded(t.last_pts, 6)},
                                     {"frames", t.frames}});
  }
  OrderedJson tracks{{"count", lengths.size()}};
  if (!lengths.empty()) {
    std::sort(lengths.begin(), lengths.end());
    const size_t n = lengths.size();
    const double median = n % 2 ? static_cast<double>(lengths[n / 2])
                                : (static_cast<double>(lengths[n / 2 - 1]) + static_cast<double>(lengths[n / 2])) / 2;
    double sum = 0;
    for (int64_t l : lengths) sum += static_cast<double>(l);
    tracks["frames_per_track"] = OrderedJson{{"min", lengths.front()},
                                             {"median", Rounded(median, 3)},
                                             {"mean", Rounded(sum / static_cast<double>(n), 3)},
                                             {"max", lengths.back()}};
  } else {
    tracks["frames_per_track"] = nullptr;
  }
  tracks["per_track"] = std::move(track_list);
  j["tracks"] = std::move(tracks);
  return j.dump(2) + "\n";
}

Status VideoResultWriter::Commit(const VideoCompletion& done) {
  State& s = *state_;
  if (s.committed) return MakeError(StatusCode::kInternal, fmt::format("{}: committed twice", s.dir));
  VS_ASSIGN_OR_RETURN(AtomicFile summary, AtomicFile::Create((fs::path(s.dir) / kSummaryFileName).string()));
  VS_RETURN_IF_ERROR(summary.Write(SummaryJson(done)));
  VS_RETURN_IF_ERROR(s.detections.Commit());
  VS_RETURN_IF_ERROR(s.tracks.Commit());
  VS_RETURN_IF_ERROR(summary.Commit());
  s.committed = true;
  return Status::Ok();
}

}  // namespace vidscan
