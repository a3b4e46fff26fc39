// One producer's frame path to its one consumer: a shared-memory object holding the producer's
// PoolLocator and two SPSC rings,
//
//   descriptors  producer -> consumer   FrameDescriptor per frame (and per video begin/end)
//   free slots   consumer -> producer   slot indices the consumer has finished reading
//
// Every slot starts in the free ring. The producer takes a free slot, writes the frame into the pool,
// sends its descriptor; the consumer reads the slot in place and returns its index. The free ring holds
// every slot, so returning one never blocks; a producer with no free slot waits (back-pressure).
//
// Exactly two processes use a channel, so if one dies the survivor can reset it alone (see
// ReclaimAfterConsumerDeath) — which is why a producer feeds exactly one consumer.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "ipc/frame_descriptor.h"
#include "ipc/ring.h"
#include "ipc/shm_region.h"
#include "ipc/slot_memory.h"

namespace vidscan::ipc {

// Where each side of a channel sleeps: the consumer's doorbell is rung when a descriptor arrives, the
// producer's when a slot returns or descriptor space frees up. nullptr: the rings' own doorbells.
struct ChannelBells {
  Doorbell* consumer = nullptr;
  Doorbell* producer = nullptr;
};

class FrameChannel {
 public:
  using Bells = ChannelBells;

  // Producer: creates the channel object (owning its name) for `pool`, every slot free.
  static Expected<FrameChannel> Create(const std::string& name, const PoolLocator& pool,
                                       uint32_t descriptor_capacity, Bells bells = {});
  // Consumer: opens a channel the producer created.
  static Expected<FrameChannel> Open(const std::string& name, Bells bells = {});

  const PoolLocator& pool() const { return pool_; }
  const ShmRegion& region() const { return region_; }
  ShmRegion& region() { return region_; }

  // ---- producer ----
  std::optional<int> TryAcquireSlot();
  // Waits for a free slot at most `timeout`.
  RingWait AcquireSlot(int* slot, std::chrono::nanoseconds timeout);
  // Stamps the descriptor's sequence and send time, then queues it. False when the ring is full.
  bool TrySend(FrameDescriptor descriptor);
  RingWait Send(const FrameDescriptor& descriptor, std::chrono::nanoseconds timeout);
  // After the consumer died (and was reaped): drops the descriptors it never read and makes every slot
  // free again. The producer must also forget the slots it holds itself: they are all in the free ring now.
  void ReclaimAfterConsumerDeath();
  uint32_t free_slots() const { return free_.size(); }

  // ---- consumer ----
  std::optional<FrameDescriptor> TryReceive();
  RingWait Receive(FrameDescriptor* descriptor, std::chrono::nanoseconds timeout);
  // Gives a slot back to the producer. An error means the slot was returned twice (a bug).
  Status ReturnSlot(int slot);
  uint32_t descriptors_waiting() const { return descriptors_.size(); }

 private:
  FrameChannel() = default;

  ShmRegion region_;
  PoolLocator pool_;
  SpscRing<FrameDescriptor> descriptors_;
  SpscRing<int32_t> free_;
  uint64_t sent_ = 0;
};

}  // namespace vidscan::ipc
