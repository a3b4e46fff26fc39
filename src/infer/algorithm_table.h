// cuDNN convolution algorithms chosen once and reused by every later process.
//
// The CUDA executor times cuDNN's algorithms for each convolution when it plans (FindEx). Timing is noisy,
// more so with other processes on the GPU (decode workers under MPS), so two processes can choose
// differently, and different algorithms round differently: a resumed run, a restarted infer worker or a
// second run of the same job could write other low-order digits for the same frames (seen once on an H200,
// docs/pipeline.md "Across processes"). A table pins the choice: the first process to plan a convolution records
// what it chose; a later one finding the convolution's key uses that algorithm instead of timing. The file
// is shared under an exclusive lock held across planning (ConvAlgorithmTable::Lock), so processes that start
// together agree too. Keys name the GPU, the cuDNN version and everything about the convolution that the
// choice depends on (shapes, padding, strides, dilation, groups, precision, workspace).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/status.h"

namespace vidscan::infer {

struct ConvAlgorithm {
  int algo = -1;  // cudnnConvolutionFwdAlgo_t
  int math = 0;   // cudnnMathType_t
  bool operator==(const ConvAlgorithm&) const = default;
};

class ConvAlgorithmTable {
 public:
  explicit ConvAlgorithmTable(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  std::optional<ConvAlgorithm> Find(const std::string& key) const;
  // Adds a choice; a key already present keeps its algorithm (the first choice wins).
  void Record(const std::string& key, ConvAlgorithm choice);
  size_t size() const { return entries_.size(); }

  // Replaces the table with the file's (an absent file is an empty table). A file that is not a table
  // is an error naming it: it is not silently overwritten.
  Status Load();
  // Writes the table to the file atomically (a temporary file renamed over it).
  Status Save() const;

  // An exclusive lock on `path.lock` (flock: released when destroyed, or when the process dies).
  class FileLock {
   public:
    FileLock() = default;
    explicit FileLock(int fd) : fd_(fd) {}
    FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();

   private:
    int fd_ = -1;
  };
  // Blocks until no other process holds the lock.
  Expected<FileLock> Lock() const;

 private:
  std::string path_;
  std::map<std::string, ConvAlgorithm> entries_;
};

}  // namespace vidscan::infer
