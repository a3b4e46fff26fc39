// MOTChallenge text files: detections in (det.txt: frame,id,x,y,w,h,score,...) and tracking results out
// (frame,id,x,y,w,h,score,-1,-1,-1). Frames are 1-based; boxes are top-left corner and size in pixels.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"

namespace vidscan {

struct MotRecord {
  int64_t frame = 0;  // 1-based
  int64_t id = -1;    // -1 for detections
  float x = 0, y = 0, w = 0, h = 0;
  float score = 1;
};

// Reads a det.txt-style file: one record per line, fields separated by commas (and/or spaces), at least
// frame,id,x,y,w,h,score; later fields are ignored; blank lines are skipped. Errors name the file and the
// 1-based line: "<path>:<line>: <what is wrong>".
Expected<std::vector<MotRecord>> ReadMotFile(const std::string& path);
// Same, from text already in memory (`source_name` is used in error messages).
Expected<std::vector<MotRecord>> ParseMotText(const std::string& text, const std::string& source_name);

// One result line, "frame,id,x,y,w,h,score,-1,-1,-1\n", with up to 2 decimals for boxes and 4 for scores
// (what the MOTChallenge tools read; sub-pixel precision beyond that is noise).
std::string FormatMotLine(const MotRecord& record);

// Writes result lines to a file, or to stdout when path is "-". Opened by the constructor; Close() (or
// the destructor, which ignores errors) flushes.
class MotWriter {
 public:
  static Expected<MotWriter> Open(const std::string& path);
  MotWriter(MotWriter&& other) noexcept;
  MotWriter& operator=(MotWriter&&) = delete;
  MotWriter(const MotWriter&) = delete;
  ~MotWriter();

  Status Write(const MotRecord& record);
  Status Close();

 private:
  MotWriter(std::FILE* file, std::string path, bool owns) : file_(file), path_(std::move(path)), owns_(owns) {}
  std::FILE* file_ = nullptr;
  std::string path_;
  bool owns_ = false;
};

}  // namespace vidscan
