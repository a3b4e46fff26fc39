#include "ipc/host_slot_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace vidscan::ipc {
namespace {

constexpr uint32_t kPoolMagic = 0x5653504C;  // "VSPL"
constexpr size_t kPage = 4096;

// The first page of the object; the slots follow it.
struct PoolHeader {
  uint32_t magic;
  uint32_t slot_count;
  uint64_t slot_bytes;
  uint64_t stride;
};

size_t RoundUp(size_t value, size_t to) { return (value + to - 1) / to * to; }

}  // namespace

Expected<FrameView> SlotMemory::View(const FrameDescriptor& d) const {
  if (d.kind != DescriptorKind::kFrame) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("video {}: descriptor is not a frame", d.video_id));
  }
  VS_RETURN_IF_ERROR(ValidateDescriptor(d, slot_count(), slot_bytes()));
  FrameView view;
  view.info = InfoOf(d);
  view.memory = memory();
  view.luma = reinterpret_cast<uint8_t*>(slot(d.slot));
  view.chroma = view.luma + d.chroma_offset;
  return view;
}

Expected<void*> SlotMemory::WriteDoneEvent(const FrameDescriptor& descriptor) {
  if (descriptor.has_cuda_event) {
    return MakeError(StatusCode::kUnsupported,
                     fmt::format("video {} frame {}: a CUDA event to wait for, in a pool that is not in device memory",
                                 descriptor.video_id, descriptor.frame_index));
  }
  return nullptr;
}

PackedFrameLayout PackFrame(int width, int height, PixelFormat format) {
  PackedFrameLayout layout;
  FrameInfo info;
  info.width = width;
  info.height = height;
  info.format = format;
  layout.pitch = info.row_bytes();
  info.pitch = layout.pitch;
  layout.chroma_offset = static_cast<uint32_t>(info.luma_bytes());
  layout.bytes = info.luma_bytes() + info.chroma_bytes();
  return layout;
}

Expected<std::unique_ptr<HostSlotPool>> HostSlotPool::Create(const std::string& name, int slot_count,
                                                             size_t slot_bytes) {
  if (slot_count <= 0 || slot_bytes == 0) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("slot pool {}: {} slots of {} bytes", name, slot_count, slot_bytes));
  }
  if (name.size() >= sizeof(PoolLocator::shm_name)) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("slot pool name '{}' is too long for a locator", name));
  }
  size_t stride = RoundUp(slot_bytes, kPage);
  VS_ASSIGN_OR_RETURN(ShmRegion region, ShmRegion::Create(name, kPage + stride * static_cast<size_t>(slot_count)));
  auto* header = reinterpret_cast<PoolHeader*>(region.data());
  header->slot_count = static_cast<uint32_t>(slot_count);
  header->slot_bytes = slot_bytes;
  header->stride = stride;
  header->magic = kPoolMagic;
  return std::unique_ptr<HostSlotPool>(new HostSlotPool(std::move(region), slot_count, slot_bytes, stride));
}

Expected<std::unique_ptr<HostSlotPool>> HostSlotPool::Open(const std::string& name) {
  VS_ASSIGN_OR_RETURN(ShmRegion region, ShmRegion::Open(name));
  if (region.size() < kPage) return MakeError(StatusCode::kCorruptData, fmt::format("slot pool {}: too small", name));
  PoolHeader header;
  std::memcpy(&header, region.data(), sizeof(header));
  if (header.magic != kPoolMagic || header.slot_count == 0 || header.slot_bytes == 0 ||
      header.stride < header.slot_bytes || header.stride % kPage != 0 ||
      kPage + header.stride * header.slot_count > region.size()) {
    return MakeError(StatusCode::kCorruptData, fmt::format("slot pool {}: header does not describe the object", name));
  }
  return std::unique_ptr<HostSlotPool>(new HostSlotPool(std::move(region), static_cast<int>(header.slot_count),
                                                        header.slot_bytes, header.stride));
}

Expected<std::unique_ptr<HostSlotPool>> HostSlotPool::Open(const PoolLocator& locator) {
  if (locator.memory != MemoryKind::kHost) {
    return MakeError(StatusCode::kUnsupported, "the producer's pool is in device memory, not host shared memory");
  }
  std::string name(locator.shm_name, strnlen(locator.shm_name, sizeof(locator.shm_name)));
  VS_ASSIGN_OR_RETURN(auto pool, Open(name));
  if (pool->slot_count() != locator.slot_count || pool->slot_bytes() != locator.slot_bytes) {
    return MakeError(StatusCode::kCorruptData, fmt::format("slot pool {}: geometry differs from the channel's", name));
  }
  return pool;
}

std::byte* HostSlotPool::slot(int index) const {
  assert(index >= 0 && index < slot_count_);
  return region_.data() + kPage + stride_ * static_cast<size_t>(index);
}

PoolLocator HostSlotPool::locator() const {
  PoolLocator locator;
  locator.memory = MemoryKind::kHost;
  locator.slot_count = slot_count_;
  locator.slot_bytes = slot_bytes_;
  locator.slot_stride = stride_;
  const std::string& name = region_.name();
  std::memcpy(locator.shm_name, name.data(), std::min(name.size(), sizeof(locator.shm_name) - 1));
  return locator;
}

}  // namespace vidscan::ipc
