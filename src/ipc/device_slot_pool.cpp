// What every build has of the device slot pool: the export names and, without CUDA, the pool's
// "unavailable" answers (the CUDA implementation is device_slot_pool_cuda.cpp).
#include "ipc/device_slot_pool.h"

#include <cstdlib>
#include <string_view>

namespace vidscan::ipc {

const char* DevicePoolExportName(DevicePoolExport how) {
  switch (how) {
    case DevicePoolExport::kPosixFd: return "fd";
    case DevicePoolExport::kLegacyIpc: return "legacy";
  }
  return "unknown";
}

Expected<DevicePoolExport> DevicePoolExportFromEnvironment() {
  const char* value = std::getenv("VIDSCAN_DEVICE_POOL_EXPORT");
  const std::string_view text = value ? value : "fd";
  if (text == "fd" || text.empty()) return DevicePoolExport::kPosixFd;
  if (text == "legacy") return DevicePoolExport::kLegacyIpc;
  return MakeError(StatusCode::kInvalidArgument,
                   "VIDSCAN_DEVICE_POOL_EXPORT=" + std::string(text) + ": expected fd (cuMemCreate) or legacy (cudaIpcGetMemHandle)");
}

}  // namespace vidscan::ipc

#if !defined(VIDSCAN_HAVE_CUDA)

namespace vidscan::ipc {

struct DeviceSlotPool::Impl {};

namespace {
Status NoCuda() { return MakeError(StatusCode::kUnavailable, "this build has no CUDA: no device slot pools"); }
}  // namespace

DeviceSlotPool::DeviceSlotPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceSlotPool::~DeviceSlotPool() = default;
Expected<std::unique_ptr<DeviceSlotPool>> DeviceSlotPool::Create(const std::string&, int, size_t, int, DevicePoolExport) {
  return NoCuda();
}
Expected<std::unique_ptr<DeviceSlotPool>> DeviceSlotPool::Open(const PoolLocator&) { return NoCuda(); }
// Without CUDA no pool can exist, so none of these is ever called on one.
int DeviceSlotPool::slot_count() const { return 0; }
size_t DeviceSlotPool::slot_bytes() const { return 0; }
std::byte* DeviceSlotPool::slot(int) const { return nullptr; }
PoolLocator DeviceSlotPool::locator() const { return {}; }
Expected<void*> DeviceSlotPool::WriteDoneEvent(const FrameDescriptor&) { return NoCuda(); }
Status DeviceSlotPool::WriteFrame(int, const FrameView&, uint32_t, uint8_t*) { return NoCuda(); }
Status DeviceSlotPool::MarkWritten(int, uint8_t*) { return NoCuda(); }
Expected<bool> DeviceSlotPool::WriteFinished(int) { return NoCuda(); }
Status DeviceSlotPool::WaitForWrites() { return NoCuda(); }
DevicePoolExport DeviceSlotPool::export_kind() const { return DevicePoolExport::kPosixFd; }
int DeviceSlotPool::device() const { return -1; }

}  // namespace vidscan::ipc

#endif  // !VIDSCAN_HAVE_CUDA
