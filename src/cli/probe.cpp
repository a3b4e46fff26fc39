// `vidscan probe FILE...`: what each file holds, as a table or JSON.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "media/demuxer.h"

namespace vidscan::cli {
namespace {

nlohmann::json ToJson(const VideoStreamInfo& i) {
  return {{"path", i.path},
          {"container", i.container},
          {"codec", i.codec_name},
          {"supported", i.codec != VideoCodec::kOther},
          {"profile", i.profile},
          {"width", i.width},
          {"height", i.height},
          {"bit_depth", i.bit_depth},
          {"chroma", i.chroma_format_idc == 1 ? "4:2:0" : i.chroma_format_idc == 0 ? "4:0:0"
                     : i.chroma_format_idc == 2 ? "4:2:2" : "4:4:4"},
          {"fps", i.fps},
          {"declared_avg_fps", i.declared_avg_fps},
          {"duration_seconds", i.duration_seconds},
          {"frame_count_estimate", i.frame_count_estimate},
          {"bit_rate", i.bit_rate},
          {"color_space", ColorSpaceName(i.color_space)},
          {"color_space_guessed", i.color_space_guessed},
          {"color_range", ColorRangeName(i.color_range)},
          {"color_primaries", i.color_primaries},
          {"color_transfer", i.color_transfer},
          {"audio_streams_ignored", i.audio_streams}};
}

void PrintHuman(const VideoStreamInfo& i) {
  fmt::print("{}\n", i.path);
  fmt::print("  container   {}\n", i.container);
  fmt::print("  codec       {}{}{}\n", i.codec_name, i.profile.empty() ? "" : " " + i.profile,
             i.codec == VideoCodec::kOther ? "  (not supported by vidscan)" : "");
  fmt::print("  resolution  {}x{}, {}-bit\n", i.width, i.height, i.bit_depth);
  fmt::print("  fps         {:.3f}{}\n", i.fps,
             std::abs(i.declared_avg_fps - i.fps) > 0.01 && i.declared_avg_fps > 0
                 ? fmt::format(" (container declares an average of {:.3f})", i.declared_avg_fps)
                 : "");
  fmt::print("  duration    {:.3f} s, about {} frames\n", i.duration_seconds, i.frame_count_estimate);
  fmt::print("  colour      {} {} range{}\n", ColorSpaceName(i.color_space), ColorRangeName(i.color_range),
             i.color_space_guessed ? " (not signalled; guessed from the resolution)" : "");
  if (i.bit_rate > 0) fmt::print("  bit rate    {:.2f} Mbit/s\n", i.bit_rate / 1e6);
  if (i.audio_streams > 0) fmt::print("  audio       {} stream(s), ignored\n", i.audio_streams);
}

}  // namespace

void AddProbeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("probe", "Describe video files: container, codec, size, fps, duration, colour");
  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("files", *files, "Video files")->required();
  cmd->add_flag("--json", *json, "One JSON array on stdout (errors as {\"path\", \"error\"} records)");
  cmd->callback([=] {
    nlohmann::json out = nlohmann::json::array();
    int failed = 0;
    for (const auto& path : *files) {
      auto demuxer = Demuxer::Open(path);
      if (!demuxer.ok()) {
        ++failed;
        if (*json) {
          out.push_back({{"path", path}, {"error", demuxer.status().ToString()}});
        } else {
          fmt::print(stderr, "error: {}\n", demuxer.status().ToString());
        }
        continue;
      }
      if (*json) {
        out.push_back(ToJson((*demuxer)->info()));
      } else {
        PrintHuman((*demuxer)->info());
      }
    }
    if (*json) std::cout << out.dump(2) << "\n";
    *exit_code = failed > 0 ? kExitSomeFilesFailed : kExitOk;
  });
}

}  // namespace vidscan::cli
