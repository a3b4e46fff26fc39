#include "infer/thread_pool.h"

namespace vidscan::infer {

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Drain(const std::function<void(int64_t)>* job, int64_t count) {
  for (int64_t i = next_.fetch_add(1); i < count; i = next_.fetch_add(1)) (*job)(i);
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    // Read the job under the lock: the caller clears it only once busy_ is back to zero.
    const auto* job = job_;
    const int64_t count = job_count_;
    ++busy_;
    lock.unlock();
    if (job) Drain(job, count);
    lock.lock();
    if (--busy_ == 0) finished_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t count, const std::function<void(int64_t)>& fn) {
  if (count <= 0) return;
  if (workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_count_ = count;
    next_.store(0);
    ++generation_;
  }
  wake_.notify_all();
  Drain(&fn, count);
  // Workers that woke late find the counter exhausted; wait until none still runs fn.
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [&] { return busy_ == 0; });
  job_ = nullptr;
}

}  // namespace vidscan::infer
