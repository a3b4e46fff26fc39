#include "ipc/frame_channel.h"

#include <fmt/format.h>

#include <cstring>

namespace vidscan::ipc {
namespace {

constexpr uint32_t kChannelMagic = 0x56534348;  // "VSCH"

struct ChannelHeader {
  uint32_t magic;
  uint32_t reserved;
  uint64_t descriptors_offset, descriptors_bytes;
  uint64_t free_offset, free_bytes;
  PoolLocator pool;
};

constexpr size_t kHeaderBytes = (sizeof(ChannelHeader) + 63) / 64 * 64;

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Expected<FrameChannel> FrameChannel::Create(const std::string& name, const PoolLocator& pool,
                                            uint32_t descriptor_capacity, Bells bells) {
  if (pool.slot_count <= 0) return MakeError(StatusCode::kInvalidArgument, fmt::format("channel {}: no slots", name));
  const size_t descriptor_bytes = SpscRing<FrameDescriptor>::BytesFor(descriptor_capacity);
  const size_t free_bytes = SpscRing<int32_t>::BytesFor(static_cast<uint32_t>(pool.slot_count));
  VS_ASSIGN_OR_RETURN(ShmRegion region, ShmRegion::Create(name, kHeaderBytes + descriptor_bytes + free_bytes));
  auto* header = reinterpret_cast<ChannelHeader*>(region.data());
  header->descriptors_offset = kHeaderBytes;
  header->descriptors_bytes = descriptor_bytes;
  header->free_offset = kHeaderBytes + descriptor_bytes;
  header->free_bytes = free_bytes;
  header->pool = pool;

  FrameChannel channel;
  VS_ASSIGN_OR_RETURN(channel.descriptors_,
                      SpscRing<FrameDescriptor>::Format(region.data() + header->descriptors_offset, descriptor_bytes,
                                                        descriptor_capacity, bells.consumer, bells.producer));
  // Nobody ever waits for room in the free ring (it holds every slot), so its `writable` bell is its own.
  VS_ASSIGN_OR_RETURN(channel.free_, SpscRing<int32_t>::Format(region.data() + header->free_offset, free_bytes,
                                                               static_cast<uint32_t>(pool.slot_count), bells.producer,
                                                               nullptr));
  for (int32_t slot = 0; slot < pool.slot_count; ++slot) channel.free_.TryPush(slot);
  // The consumer opens the channel only after the producer's kHello (see JobRegion), so it sees all this.
  header->magic = kChannelMagic;
  channel.pool_ = pool;
  channel.region_ = std::move(region);
  return channel;
}

Expected<FrameChannel> FrameChannel::Open(const std::string& name, Bells bells) {
  VS_ASSIGN_OR_RETURN(ShmRegion region, ShmRegion::Open(name));
  if (region.size() < kHeaderBytes) return MakeError(StatusCode::kCorruptData, fmt::format("channel {}: too small", name));
  ChannelHeader header;
  std::memcpy(&header, region.data(), sizeof(header));
  if (header.magic != kChannelMagic || header.pool.slot_count <= 0 ||
      header.descriptors_offset + header.descriptors_bytes > region.size() ||
      header.free_offset + header.free_bytes > region.size() || header.descriptors_offset % 64 != 0 ||
      header.free_offset % 64 != 0) {
    return MakeError(StatusCode::kCorruptData, fmt::format("channel {}: header does not describe the object", name));
  }
  FrameChannel channel;
  auto descriptors = SpscRing<FrameDescriptor>::Attach(region.data() + header.descriptors_offset,
                                                       header.descriptors_bytes, bells.consumer, bells.producer);
  if (!descriptors.ok()) return descriptors.status().WithContext(fmt::format("channel {} descriptor ring", name));
  auto free = SpscRing<int32_t>::Attach(region.data() + header.free_offset, header.free_bytes, bells.producer, nullptr);
  if (!free.ok()) return free.status().WithContext(fmt::format("channel {} free-slot ring", name));
  if (free->capacity() < static_cast<uint32_t>(header.pool.slot_count)) {
    return MakeError(StatusCode::kCorruptData, fmt::format("channel {}: free ring smaller than the pool", name));
  }
  channel.descriptors_ = *descriptors;
  channel.free_ = *free;
  channel.pool_ = header.pool;
  channel.region_ = std::move(region);
  return channel;
}

std::optional<int> FrameChannel::TryAcquireSlot() {
  std::optional<int32_t> slot = free_.TryPop();
  if (!slot) return std::nullopt;
  return *slot;
}

RingWait FrameChannel::AcquireSlot(int* slot, std::chrono::nanoseconds timeout) {
  int32_t value = -1;
  RingWait result = free_.Pop(&value, timeout);
  if (result == RingWait::kOk) *slot = value;
  return result;
}

bool FrameChannel::TrySend(FrameDescriptor descriptor) {
  descriptor.sequence = sent_;
  descriptor.sent_ns = SteadyNanos();
  if (!descriptors_.TryPush(descriptor)) return false;
  ++sent_;
  return true;
}

RingWait FrameChannel::Send(const FrameDescriptor& descriptor, std::chrono::nanoseconds timeout) {
  FrameDescriptor stamped = descriptor;
  stamped.sequence = sent_;
  stamped.sent_ns = SteadyNanos();
  RingWait result = descriptors_.Push(stamped, timeout);
  if (result == RingWait::kOk) ++sent_;
  return result;
}

void FrameChannel::ReclaimAfterConsumerDeath() {
  descriptors_.ClearWithoutPeer();
  // The dead consumer was the free ring's producer: with it gone we may play both roles.
  free_.ClearWithoutPeer();
  for (int32_t slot = 0; slot < pool_.slot_count; ++slot) free_.TryPush(slot);
}

std::optional<FrameDescriptor> FrameChannel::TryReceive() { return descriptors_.TryPop(); }

RingWait FrameChannel::Receive(FrameDescriptor* descriptor, std::chrono::nanoseconds timeout) {
  return descriptors_.Pop(descriptor, timeout);
}

Status FrameChannel::ReturnSlot(int slot) {
  if (slot < 0 || slot >= pool_.slot_count) {
    return MakeError(StatusCode::kInternal, fmt::format("returning slot {} of a {}-slot pool", slot, pool_.slot_count));
  }
  if (!free_.TryPush(slot)) {
    return MakeError(StatusCode::kInternal, fmt::format("free-slot ring full returning slot {}: a slot came back twice", slot));
  }
  return Status::Ok();
}

}  // namespace vidscan::ipc
