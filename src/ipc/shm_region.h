// RAII POSIX shared memory (shm_open + mmap) with per-job names, and the cleanup of a killed job's leftovers.
//
// Names are `/vidscan-<uid>-<supervisor pid>-<tag>-<what>`: the uid keeps users apart, the supervisor's
// pid says whether the job that made the object is still alive (RemoveStaleShm), the tag keeps several
// jobs of one supervisor apart, and `what` names the object inside the job ("ctl", "d0g1-pool", ...).
// Objects are created with O_EXCL and mode 0600: only this user can map frames or forge descriptors.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vidscan::ipc {

// "/vidscan-<uid>-<pid>-<tag>-": the prefix of every object of one job. The tag must be non-empty and
// hold only letters, digits, '.' and '_' (no '-' or '/'), so that names parse back unambiguously.
Expected<std::string> ShmJobPrefix(pid_t supervisor_pid, std::string_view tag);
// ShmJobPrefix(...) + what.
Expected<std::string> ShmName(pid_t supervisor_pid, std::string_view tag, std::string_view what);

class ShmRegion {
 public:
  // Creates a new object of `bytes` (zero-filled; tmpfs space reserved up front, so a full /dev/shm is an
  // error here rather than a SIGBUS on first touch) and maps it. This object owns the name: it unlinks it
  // when destroyed.
  static Expected<ShmRegion> Create(const std::string& name, size_t bytes);
  // Maps an existing object whole. Does not own the name.
  static Expected<ShmRegion> Open(const std::string& name);

  ShmRegion() = default;
  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }
  bool owns_name() const { return owns_name_; }
  bool valid() const { return data_ != nullptr; }

  // Unlinks the name now (the mapping stays valid); a later destruction does not unlink again.
  Status Unlink();
  // Keeps the name alive after this object dies (someone else will unlink it).
  void ReleaseName() { owns_name_ = false; }

 private:
  void Reset();

  std::string name_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool owns_name_ = false;
};

// shm_unlink; a name that is already gone is not an error.
Status UnlinkShm(const std::string& name);
// Names ("/...") of the shared-memory objects whose name starts with `prefix` ("/vidscan-1000-42-job-").
std::vector<std::string> ListShm(std::string_view prefix);
// Unlinks every object named by ShmJobPrefix(..., any tag) for this uid whose supervisor process is gone
// (no such pid, or a zombie): the leftovers of a killed job. Objects of live supervisors, of other users
// and not named by vidscan are left alone. Returns the names removed.
std::vector<std::string> RemoveStaleShm();

}  // namespace vidscan::ipc
