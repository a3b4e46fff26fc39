// Crash-safe output files: bytes go to a temp file beside the final one (".<name>.partial" in the same
// directory, so the rename cannot cross file systems) and appear under the final name only on Commit(),
// after they are on disk. A process killed at any moment leaves at most a ".partial" file, never a half
// file under the final name; a rerun overwrites or removes the leftovers.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace vidscan {

class AtomicFile {
 public:
  // Creates (truncating a stale one) the temp file for final_path. The directory must exist.
  static Expected<AtomicFile> Create(const std::string& final_path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Without a successful Commit() the temp file is removed.
  ~AtomicFile();

  // Buffered; errors name the temp file.
  Status Write(std::string_view bytes);
  // Flushes, fsyncs the file, renames it onto final_path and fsyncs the directory, so that after an OK
  // return the file survives a crash or power loss under its final name. Once only.
  Status Commit();
  // Closes and removes the temp file now (the destructor does the same, ignoring errors).
  void Abandon();

  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }
  bool committed() const { return committed_; }

 private:
  AtomicFile(int fd, std::string final_path, std::string temp_path);
  Status FlushBuffer();

  int fd_ = -1;
  std::string final_path_;
  std::string temp_path_;
  std::string buffer_;
  bool committed_ = false;
};

// "<dir>/.<name>.partial" for "<dir>/<name>".
std::string PartialPathFor(const std::string& final_path);
bool IsPartialFileName(std::string_view file_name);

// Removes the ".partial" files a killed run left in dir (not recursive); returns how many it removed.
// Call it only when no other process writes into dir.
Expected<int> RemoveStalePartialFiles(const std::string& dir);

// fsync of a directory: makes a rename or unlink inside it durable.
Status SyncDirectory(const std::string& dir);

}  // namespace vidscan
