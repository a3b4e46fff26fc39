#include "core/slot_pool.h"

#include <cassert>

namespace vidscan {

SlotPool::SlotPool(int slot_count) : slot_count_(slot_count) {
  free_slots_.reserve(slot_count);
  for (int i = slot_count - 1; i >= 0; --i) free_slots_.push_back(i);
}

int SlotPool::Acquire() {
  std::unique_lock lock(mutex_);
  slot_freed_.wait(lock, [&] { return !free_slots_.empty(); });
  int slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

std::optional<int> SlotPool::TryAcquire() {
  std::lock_guard lock(mutex_);
  if (free_slots_.empty()) return std::nullopt;
  int slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

void SlotPool::Release(int slot) {
  {
    std::lock_guard lock(mutex_);
    assert(slot >= 0 && slot < slot_count_);
    free_slots_.push_back(slot);
  }
  // notify_all: an Acquire and a WaitUntilAllReturned may both be waiting.
  slot_freed_.notify_all();
}

void SlotPool::WaitUntilAllReturned() {
  std::unique_lock lock(mutex_);
  slot_freed_.wait(lock, [&] { return static_cast<int>(free_slots_.size()) == slot_count_; });
}

int SlotPool::free_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(free_slots_.size());
}

SlotLease& SlotLease::operator=(SlotLease&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = other.pool_;
    slot_ = other.slot_;
    other.pool_ = nullptr;
  }
  return *this;
}

void SlotLease::Reset() {
  if (pool_) pool_->Release(slot_);
  pool_ = nullptr;
}

}  // namespace vidscan
