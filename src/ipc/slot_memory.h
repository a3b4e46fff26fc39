// The memory frames live in between the decode and the inference process: a fixed pool of equal slots,
// allocated once by the producer and mapped once by the consumer. HostSlotPool (host shared memory) is
// the CPU implementation; the GPU path implements the same interface over a device pool exported with
// CUDA IPC (docs/ipc.md says which export and why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/frame.h"
#include "core/status.h"
#include "ipc/frame_descriptor.h"

namespace vidscan::ipc {

// How a consumer finds and maps a producer's pool; stored in the channel header.
struct PoolLocator {
  MemoryKind memory = MemoryKind::kHost;
  uint8_t device_export = 0;  // kDevice: how the pool is shared (DevicePoolExport, device_slot_pool.h)
  uint8_t reserved[2] = {};
  int32_t slot_count = 0;
  uint64_t slot_bytes = 0;   // usable bytes per slot
  uint64_t slot_stride = 0;  // bytes from one slot's start to the next
  // kHost: the pool's shared-memory object. kDevice exported as a file descriptor: the abstract Unix
  // socket the exporter hands the descriptor out on.
  char shm_name[128] = {};
  int32_t cuda_device = -1;  // kDevice: ordinal of the device the pool lives on
  uint8_t reserved2[4] = {};
  uint8_t ipc_handle[64] = {};  // kDevice: the exporter's handle (cudaIpcMemHandle_t is 64 bytes)
};
static_assert(std::is_trivially_copyable_v<PoolLocator>);

class SlotMemory {
 public:
  virtual ~SlotMemory() = default;
  virtual int slot_count() const = 0;
  virtual size_t slot_bytes() const = 0;
  virtual MemoryKind memory() const = 0;
  // Start of a slot, an address valid in this process (host or device). index in [0, slot_count).
  virtual std::byte* slot(int index) const = 0;
  virtual PoolLocator locator() const = 0;

  // The frame a kFrame descriptor describes, read in place (no copy). The descriptor is validated first:
  // a wrong one never yields a view outside the slot.
  Expected<FrameView> View(const FrameDescriptor& descriptor) const;
  // Consumer: what to wait for before reading the frame of a kFrame descriptor — a cudaEvent_t the
  // producer recorded after writing the slot (opened from the descriptor's handle) — or nullptr when
  // nothing needs waiting for (host memory: the descriptor's arrival is the frame's). Valid while the
  // pool is.
  virtual Expected<void*> WriteDoneEvent(const FrameDescriptor& descriptor);
};

// The layout of a frame packed into a slot: rows `pitch` bytes apart, chroma right after the luma.
struct PackedFrameLayout {
  int pitch = 0;
  uint32_t chroma_offset = 0;
  size_t bytes = 0;
};
PackedFrameLayout PackFrame(int width, int height, PixelFormat format);

}  // namespace vidscan::ipc
