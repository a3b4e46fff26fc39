// `vidscan track DETECTIONS`: ByteTrack alone over a MOTChallenge detection file, MOT results out.
#include <fmt/format.h>

#include <chrono>
#include <map>

#include "cli/commands.h"
#include "sink/mot_format.h"
#include "track/byte_tracker.h"

namespace vidscan::cli {
namespace {

struct TrackOptions {
  std::string detections;
  std::string output = "-";
  track::ByteTrackParams params;
  int every = 1;
  float min_box_area = 10.f;
  bool quiet = false;
};

Status RunTrack(const TrackOptions& o) {
  VS_ASSIGN_OR_RETURN(auto records, ReadMotFile(o.detections));
  // Group by frame (the file is usually sorted, but nothing promises it).
  std::map<int64_t, std::vector<track::Detection>> frames;
  for (const auto& r : records) frames[r.frame].push_back({{r.x, r.y, r.w, r.h}, r.score});
  const int64_t last_frame = frames.empty() ? 0 : frames.rbegin()->first;

  VS_ASSIGN_OR_RETURN(auto writer, MotWriter::Open(o.output));
  track::ByteTracker tracker(o.params);
  std::vector<track::TrackedObject> tracked;
  const std::vector<track::Detection> none;
  int64_t analysed = 0, boxes_out = 0, max_id = 0;
  const auto start = std::chrono::steady_clock::now();
  double tracker_seconds = 0;
  // Every analysed frame is passed to the tracker, including frames without detections: an empty frame
  // is evidence too (tracks go lost), unlike a frame that was not analysed.
  for (int64_t frame = 1; frame <= last_frame; frame += o.every) {
    auto it = frames.find(frame);
    const auto& dets = it == frames.end() ? none : it->second;
    const auto t0 = std::chrono::steady_clock::now();
    VS_RETURN_IF_ERROR(tracker.Update(frame, dets, &tracked));
    tracker_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++analysed;
    for (const auto& t : tracked) {
      // The reference evaluation drops tiny boxes (min_box_area) before writing results.
      if (t.box.w * t.box.h <= o.min_box_area) continue;
      VS_RETURN_IF_ERROR(writer.Write({frame, t.track_id, t.box.x, t.box.y, t.box.w, t.box.h, t.score}));
      ++boxes_out;
      max_id = std::max(max_id, t.track_id);
    }
  }
  VS_RETURN_IF_ERROR(writer.Close());
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.quiet) {
    fmt::print(stderr,
               "track: {} detections, {} frames analysed (every {}), {} tracks, {} boxes written to {}; "
               "tracker {:.1f} ms ({:.0f} frames/s), total {:.1f} ms\n",
               records.size(), analysed, o.every, max_id, boxes_out, o.output == "-" ? "stdout" : o.output,
               tracker_seconds * 1e3, tracker_seconds > 0 ? analysed / tracker_seconds : 0.0, total * 1e3);
  }
  return Status::Ok();
}

}  // namespace

void AddTrackCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "track",
      "Run the ByteTrack tracker alone over a MOTChallenge detection file and write MOT tracking results");
  cmd->footer(
      "ByteTrack associates every box, not only confident ones: boxes scoring above --track-thresh are\n"
      "matched first to tracked and recently lost tracks (Kalman-predicted, by IoU distance weighted by the\n"
      "score); boxes between --low-thresh and --track-thresh then rescue tracks the first pass left\n"
      "unmatched (occluded people often get low scores); a leftover confident box (above --new-thresh)\n"
      "starts a track, which is confirmed when it is matched again on the next analysed frame. A track\n"
      "not seen for --buffer frames at 30 fps (scaled by --fps: at 7 fps, 30 becomes 7 frames, i.e. one\n"
      "second) is dropped. IoU distance = 1 - IoU; a pair matches only below the threshold.\n"
      "\n"
      "Input: frame,id,x,y,w,h,score[,...] per line (commas or spaces; frames 1-based; id ignored).\n"
      "Output: frame,id,x,y,w,h,score,-1,-1,-1 per tracked box (the Kalman-filtered box).\n"
      "Example: vidscan track det.txt --fps 7 -o result.txt   (PETS09-S2L1 is 7 fps)\n");
  auto opts = std::make_shared<TrackOptions>();
  cmd->add_option("detections", opts->detections, "MOTChallenge detection file (det.txt)")->required();
  cmd->add_option("-o,--output", opts->output, "Result file ('-': stdout)")->capture_default_str();
  cmd->add_option("--fps", opts->params.frame_rate,
                  "Frame rate of the sequence: scales the lost-track buffer to real time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--track-thresh", opts->params.track_thresh,
                  "Score above which a box is 'high' (first association)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--low-thresh", opts->params.low_thresh,
                  "Boxes at or below this score are ignored; between it and --track-thresh they only extend "
                  "existing tracks")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  auto* new_thresh = cmd->add_option("--new-thresh", opts->params.new_track_thresh,
                                     "Score a leftover box needs to start a new track [default: track-thresh + 0.1]")
                         ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--match-thresh", opts->params.match_thresh,
                  "First association: largest IoU distance (1 - IoU x score) that still matches")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--buffer", opts->params.track_buffer,
                  "Frames (at 30 fps) a lost track waits to be found again")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--every", opts->every,
                  "Analyse only every Nth frame (1, 1+N, ...), as sampled analysis would: shows how tracks "
                  "survive sampling")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-box-area", opts->min_box_area,
                  "Do not write tracked boxes of this area (pixels) or less, as the reference evaluation does")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", opts->quiet, "No summary line on stderr");
  cmd->callback([=] {
    TrackOptions o = *opts;
    if (new_thresh->count() == 0) o.params.new_track_thresh = o.params.track_thresh + 0.1f;
    Status st = RunTrack(o);
    if (!st.ok()) {
      fmt::print(stderr, "error: {}\n", st.message());
      *exit_code = kExitFatal;
    }
  });
}

}  // namespace vidscan::cli
