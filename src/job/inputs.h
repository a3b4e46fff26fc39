// What a `vidscan run` job processes: video files, directories (searched recursively for video extensions),
// manifests (`@list.txt` or --manifest: one path per line, or JSON Lines with per-video options) and `-`
// (a path list on stdin), turned into one ordered, duplicate-free list of videos, each with the name of its
// output folder.
//
// Keys (output folder names). A video's key is derived from how it was named:
//   - a file named directly (argument, manifest line, stdin): its file name, "clip.mp4";
//   - a file found under a directory argument: its path relative to that directory with separators
//     replaced, "cam1/2024-05-01.mp4" -> "cam1_2024-05-01.mp4";
//   - a JSON Lines manifest entry may set "key" explicitly.
// Keys are made filesystem-safe (only A-Z a-z 0-9 . _ -; anything else becomes '_'; no leading '.'; at most
// 120 characters) and compared case-insensitively (case-insensitive file systems). When derived keys
// collide, EVERY colliding one gets "-<8 hex digits>" of a hash (FNV-1a) of its absolute path, so a video's
// key depends only on its own path and on whether another input shares its name, never on the order of the
// inputs: rerunning the same command gives the same keys. Two explicit keys that collide are an error on
// the second video.
#pragma once

#include <istream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vidscan {

struct VideoInput {
  std::string path;           // as named, joined to its directory or manifest folder, lexically normalised
  std::string absolute_path;  // absolute, symlinks resolved where it exists: identity for duplicates/ledger
  std::string key;            // output folder name (see above)
  std::string sampling;       // per-video sampling ("every:3") from a JSON Lines manifest; "" = the job's
  // Where it was named: "argument", the directory argument it was found under, "<manifest>:<line>" (also
  // for files under a directory a manifest line names), "<stdin>:<line>".
  std::string origin;
  // Non-empty when the video cannot be processed (missing, unreadable, not a file). Not fatal for the job:
  // the job records it as failed with this message and goes on with the others.
  std::string error;
};

struct InputOptions {
  // File extensions (no dot, any case) picked up when searching directories; empty = the defaults. Files
  // named directly are taken whatever their extension.
  std::vector<std::string> extensions;
  // Manifest files given by option (--manifest), read after the arguments.
  std::vector<std::string> manifests;
};

// mp4 m4v mov mkv webm avi ts m2ts mts mpg mpeg flv h264 264 h265 265 hevc
const std::vector<std::string>& DefaultVideoExtensions();

// args: files, directories, "@manifest", "-" (stdin, read once; same syntax as a manifest, relative paths
// from the current directory). Order: arguments in the order given, directories sorted by path (byte
// order, depth first; hidden names starting with '.' skipped; symlinks followed, loops cut), manifests in
// file order; the first occurrence of a video wins. Fatal errors: an unreadable manifest, a malformed
// manifest line (bad JSON, unknown field, no path, bad "sample"), and an empty result.
Expected<std::vector<VideoInput>> CollectInputs(std::span<const std::string> args, const InputOptions& options,
                                                std::istream& stdin_stream);

// The filesystem-safe form of a name (the rule above, without the collision suffix).
std::string SanitizeKey(std::string_view name);

}  // namespace vidscan
