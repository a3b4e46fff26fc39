// A fixed set of worker threads for the CPU executor's data-parallel loops. ParallelFor hands out indices
// dynamically (an atomic counter), so uneven tiles balance; the calling thread works too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vidscan::infer {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; <= 1 runs everything inline
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(i) for every i in [0, count), spread over the threads; returns when all are done.
  void ParallelFor(int64_t count, const std::function<void(int64_t)>& fn);

 private:
  void WorkerLoop();
  void Drain(const std::function<void(int64_t)>* job, int64_t count);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_count_ = 0;
  uint64_t generation_ = 0;
  std::atomic<int64_t> next_{0};
  int busy_ = 0;
  bool stop_ = false;
};

}  // namespace vidscan::infer
