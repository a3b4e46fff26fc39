// A pool of fixed-size frame slots in host shared memory: the CPU stand-in for the device pool a decode
// worker exports with CUDA IPC. The producer creates it (and owns its name), the consumer opens it by the
// name in the channel's PoolLocator; both then address the same bytes, so a frame written by the producer
// is read by the consumer in place.
//
// Which slots are free is not the pool's business: a FrameChannel carries slot indices back to the
// producer through its free-list ring (producer: TryAcquireSlot, write, TrySend; consumer: TryReceive,
// read in place, ReturnSlot).
#pragma once

#include <memory>
#include <string>

#include "ipc/shm_region.h"
#include "ipc/slot_memory.h"

namespace vidscan::ipc {

class HostSlotPool final : public SlotMemory {
 public:
  // Creates the pool's shared-memory object: `slot_count` slots of at least `slot_bytes`, each starting on
  // a page boundary.
  static Expected<std::unique_ptr<HostSlotPool>> Create(const std::string& name, int slot_count, size_t slot_bytes);
  // Maps a pool another process created; the geometry comes from its header and is checked against the
  // object's size.
  static Expected<std::unique_ptr<HostSlotPool>> Open(const std::string& name);
  // Opens the pool a locator names (memory must be kHost).
  static Expected<std::unique_ptr<HostSlotPool>> Open(const PoolLocator& locator);

  int slot_count() const override { return slot_count_; }
  size_t slot_bytes() const override { return slot_bytes_; }
  MemoryKind memory() const override { return MemoryKind::kHost; }
  std::byte* slot(int index) const override;
  PoolLocator locator() const override;
  const ShmRegion& region() const { return region_; }

 private:
  HostSlotPool(ShmRegion region, int slot_count, size_t slot_bytes, size_t stride)
      : region_(std::move(region)), slot_count_(slot_count), slot_bytes_(slot_bytes), stride_(stride) {}

  ShmRegion region_;
  int slot_count_;
  size_t slot_bytes_;
  size_t stride_;
};

}  // namespace vidscan::ipc
