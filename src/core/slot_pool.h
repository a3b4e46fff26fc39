// A fixed set of frame slots handed out and returned: the memory is allocated once by the owner, and
// Acquire blocks while every slot is in use, which is the back-pressure that keeps memory bounded.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

namespace vidscan {

class SlotPool {
 public:
  explicit SlotPool(int slot_count);
  // Waits for every slot to come back: a lease must never outlive the memory its slot names.
  ~SlotPool() { WaitUntilAllReturned(); }
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  int slot_count() const { return slot_count_; }
  // Blocks until a slot is free.
  int Acquire();
  // Returns a slot at once, or nothing when all are in use.
  std::optional<int> TryAcquire();
  void Release(int slot);
  int free_count() const;
  // Blocks until no slot is leased. An owner calls this before freeing the slots' memory, since a consumer
  // downstream (a batch waiting for inference) may still read a frame after its decoder has finished.
  void WaitUntilAllReturned();

 private:
  const int slot_count_;
  mutable std::mutex mutex_;
  std::condition_variable slot_freed_;
  std::vector<int> free_slots_;
};

// Owns one acquired slot and returns it to its pool when destroyed (move-only).
class SlotLease {
 public:
  SlotLease() = default;
  SlotLease(SlotPool* pool, int slot) : pool_(pool), slot_(slot) {}
  SlotLease(SlotLease&& other) noexcept : pool_(other.pool_), slot_(other.slot_) { other.pool_ = nullptr; }
  SlotLease& operator=(SlotLease&& other) noexcept;
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { Reset(); }

  int slot() const { return slot_; }
  bool valid() const { return pool_ != nullptr; }
  void Reset();

 private:
  SlotPool* pool_ = nullptr;
  int slot_ = -1;
};

}  // namespace vidscan
