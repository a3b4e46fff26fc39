// Frame slots in device memory, shared between processes without copying: a decode worker allocates the
// pool once and exports it once; its infer worker maps it once (per decoder generation). Per frame only a
// descriptor crosses, carrying the slot's CUDA IPC event.
//
// Export (docs/ipc.md says why this order):
//   kPosixFd   cuMemCreate with a POSIX file descriptor handle. The exporter serves the descriptor on an
//              abstract Unix socket (named in PoolLocator::shm_name, peers checked with SO_PEERCRED) and
//              the importer receives it with SCM_RIGHTS, then cuMemImportFromShareableHandle + cuMemMap.
//              The memory lives until every mapping is gone, so an exporter that crashes cannot pull the
//              pool out from under a kernel still reading it.
//   kLegacyIpc cudaMalloc + cudaIpcGetMemHandle (64 bytes in PoolLocator::ipc_handle): no descriptor
//              passing, but freeing the exported memory while a peer has it open is undefined.
//
// Events: one per slot, created once with cudaEventInterprocess | cudaEventDisableTiming. WriteFrame copies a
// frame into a slot on the pool's stream and records the slot's event; the descriptor carries the event's
// cudaIpcEventHandle_t. The consumer opens each slot's event once (WriteDoneEvent) and makes its stream wait
// on it before the preprocess kernel reads the slot; it returns the slot only after that kernel finished.
// The free-slot ring makes this race-free: a slot's event is never re-recorded while the consumer holds it.
//
// CUDA builds only (device_slot_pool_cuda.cpp); elsewhere Create and Open fail with kUnavailable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/frame.h"
#include "core/status.h"
#include "ipc/frame_descriptor.h"
#include "ipc/slot_memory.h"

namespace vidscan::ipc {

enum class DevicePoolExport : uint8_t { kPosixFd = 1, kLegacyIpc = 2 };
const char* DevicePoolExportName(DevicePoolExport how);
// $VIDSCAN_DEVICE_POOL_EXPORT: "fd" (default) or "legacy".
Expected<DevicePoolExport> DevicePoolExportFromEnvironment();

class DeviceSlotPool final : public SlotMemory {
 public:
  // Producer: `slot_count` slots of at least `slot_bytes` on GPU `device`, exported as `how`. `name` names
  // the pool (the job's shm naming); the fd export's socket is called after it.
  static Expected<std::unique_ptr<DeviceSlotPool>> Create(const std::string& name, int slot_count, size_t slot_bytes,
                                                          int device, DevicePoolExport how);
  // Consumer: maps the pool a locator describes (memory must be kDevice).
  static Expected<std::unique_ptr<DeviceSlotPool>> Open(const PoolLocator& locator);
  ~DeviceSlotPool() override;
  DeviceSlotPool(const DeviceSlotPool&) = delete;
  DeviceSlotPool& operator=(const DeviceSlotPool&) = delete;

  int slot_count() const override;
  size_t slot_bytes() const override;
  MemoryKind memory() const override { return MemoryKind::kDevice; }
  std::byte* slot(int index) const override;
  PoolLocator locator() const override;
  // Consumer: the producer's event for the descriptor's slot, opened from its handle (cached per slot;
  // reopened when the handle changes).
  Expected<void*> WriteDoneEvent(const FrameDescriptor& descriptor) override;

  // Producer: copies `frame` (host or device memory) into `slot` keeping its pitch, the chroma plane at
  // `chroma_offset` bytes, asynchronously on the pool's stream, then records the slot's event and writes
  // its cudaIpcEventHandle_t (kCudaIpcEventHandleBytes) to `event_handle`. The frame's memory must stay
  // valid until WriteFinished(slot).
  Status WriteFrame(int slot, const FrameView& frame, uint32_t chroma_offset, uint8_t* event_handle);
  // Producer: for a slot the caller wrote itself and whose writes are complete (NVDEC's copy straight into
  // the slot, synchronised before its picture was released): records the slot's event all the same, so the
  // consumer's protocol does not change, and writes its handle to `event_handle`.
  Status MarkWritten(int slot, uint8_t* event_handle);
  // Producer: whether the copy into `slot` is complete (its source may be reused).
  Expected<bool> WriteFinished(int slot);
  // Producer: waits until every copy queued so far is complete.
  Status WaitForWrites();

  DevicePoolExport export_kind() const;
  int device() const;

 private:
  struct Impl;
  explicit DeviceSlotPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidscan::ipc
