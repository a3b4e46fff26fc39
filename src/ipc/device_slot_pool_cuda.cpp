// The device slot pool: cuMemCreate + POSIX file descriptor export (the fd passed once over an abstract Unix
// socket with SCM_RIGHTS), or cudaIpcGetMemHandle; per-slot CUDA IPC events. See device_slot_pool.h.
#include "ipc/device_slot_pool.h"

#include <cuda.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "preprocess/cuda_buffers.h"

namespace vidscan::ipc {
namespace {

constexpr uint32_t kHandshakeMagic = 0x56534650;  // "VSFP"
constexpr size_t kSlotAlignment = 4096;

size_t RoundUp(size_t value, size_t to) { return (value + to - 1) / to * to; }

// The driver's virtual memory API, fetched through the runtime (cudaGetDriverEntryPointByVersion) so that
// the binary links no libcuda and still starts on machines without the NVIDIA driver.
struct VmmApi {
  decltype(&::cuMemCreate) create = nullptr;
  decltype(&::cuMemRelease) release = nullptr;
  decltype(&::cuMemAddressReserve) reserve = nullptr;
  decltype(&::cuMemAddressFree) address_free = nullptr;
  decltype(&::cuMemMap) map = nullptr;
  decltype(&::cuMemUnmap) unmap = nullptr;
  decltype(&::cuMemSetAccess) set_access = nullptr;
  decltype(&::cuMemExportToShareableHandle) export_handle = nullptr;
  decltype(&::cuMemImportFromShareableHandle) import_handle = nullptr;
  decltype(&::cuMemGetAllocationGranularity) granularity = nullptr;
  decltype(&::cuGetErrorString) error_string = nullptr;
};

template <typename Fn>
Status Resolve(const char* symbol, Fn* fn) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  VS_RETURN_IF_ERROR(CudaStatus(cudaGetDriverEntryPointByVersion(symbol, &address, 12000, cudaEnableDefault, &found),
                                "cudaGetDriverEntryPointByVersion"));
  if (found != cudaDriverEntryPointSuccess || address == nullptr) {
    return MakeError(StatusCode::kUnavailable, fmt::format("the CUDA driver has no {} (12.0 version)", symbol));
  }
  *fn = reinterpret_cast<Fn>(address);
  return Status::Ok();
}

Expected<const VmmApi*> Vmm() {
  static std::once_flag once;
  static VmmApi api;
  static Status status;
  std::call_once(once, [] {
    status = [&]() -> Status {
      VS_RETURN_IF_ERROR(Resolve("cuMemCreate", &api.create));
      VS_RETURN_IF_ERROR(Resolve("cuMemRelease", &api.release));
      VS_RETURN_IF_ERROR(Resolve("cuMemAddressReserve", &api.reserve));
      VS_RETURN_IF_ERROR(Resolve("cuMemAddressFree", &api.address_free));
      VS_RETURN_IF_ERROR(Resolve("cuMemMap", &api.map));
      VS_RETURN_IF_ERROR(Resolve("cuMemUnmap", &api.unmap));
      VS_RETURN_IF_ERROR(Resolve("cuMemSetAccess", &api.set_access));
      VS_RETURN_IF_ERROR(Resolve("cuMemExportToShareableHandle", &api.export_handle));
      VS_RETURN_IF_ERROR(Resolve("cuMemImportFromShareableHandle", &api.import_handle));
      VS_RETURN_IF_ERROR(Resolve("cuMemGetAllocationGranularity", &api.granularity));
      VS_RETURN_IF_ERROR(Resolve("cuGetErrorString", &api.error_string));
      return Status::Ok();
    }();
  });
  if (!status.ok()) return status;
  return &api;
}

Status CuStatus(const VmmApi& api, CUresult result, const char* call) {
  if (result == CUDA_SUCCESS) return Status::Ok();
  const char* text = nullptr;
  api.error_string(result, &text);
  return MakeError(result == CUDA_ERROR_OUT_OF_MEMORY ? StatusCode::kOutOfMemory : StatusCode::kInternal,
                   fmt::format("{}: {} (CUresult {})", call, text ? text : "unknown error", static_cast<int>(result)));
}

Status Errno(const std::string& what) { return MakeError(StatusCode::kIoError, fmt::format("{}: {}", what, std::strerror(errno))); }

// What the exporter sends with the descriptor: enough for the importer to check it maps the pool it was
// told about.
struct Handshake {
  uint32_t magic = kHandshakeMagic;
  int32_t device = -1;
  uint64_t allocation_bytes = 0;
  uint64_t slot_stride = 0;
  int32_t slot_count = 0;
  int32_t reserved = 0;
};

sockaddr_un AbstractAddress(const std::string& name, socklen_t* length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const size_t bytes = std::min(name.size(), sizeof(address.sun_path) - 1);
  std::memcpy(address.sun_path + 1, name.data(), bytes);  // sun_path[0] == 0: the abstract namespace
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + bytes);
  return address;
}

Status CheckPeerIsUs(int fd) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return Errno("getsockopt(SO_PEERCRED)");
  if (peer.uid != getuid()) {
    return MakeError(StatusCode::kUnavailable, fmt::format("the pool's socket peer runs as uid {}, not {}", peer.uid, getuid()));
  }
  return Status::Ok();
}

Status SendFd(int connection, int fd, const Handshake& handshake) {
  iovec payload{const_cast<Handshake*>(&handshake), sizeof(handshake)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &payload;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  if (sendmsg(connection, &message, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(handshake))) return Errno("sendmsg(SCM_RIGHTS)");
  return Status::Ok();
}

// Connects to the exporter's socket and receives the pool's descriptor (owned by the caller).
Expected<int> ReceiveFd(const std::string& socket_name, Handshake* handshake) {
  int connection = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connection < 0) return Errno("socket(AF_UNIX)");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{connection};
  timeval timeout{5, 0};  // a live exporter answers at once; a wedged one must not hang the importer
  setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  socklen_t length = 0;
  sockaddr_un address = AbstractAddress(socket_name, &length);
  if (connect(connection, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    return Errno(fmt::format("connect to the device pool's socket @{}", socket_name));
  }
  VS_RETURN_IF_ERROR(CheckPeerIsUs(connection));
  iovec payload{handshake, sizeof(*handshake)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &payload;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t received = recvmsg(connection, &message, MSG_CMSG_CLOEXEC);
  if (received < 0) return Errno(fmt::format("recvmsg from @{}", socket_name));
  int fd = -1;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&message); cmsg; cmsg = CMSG_NXTHDR(&message, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
      std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    }
  }
  if (received != static_cast<ssize_t>(sizeof(*handshake)) || fd < 0 || handshake->magic != kHandshakeMagic ||
      (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    if (fd >= 0) close(fd);
    return MakeError(StatusCode::kCorruptData, fmt::format("@{}: no device pool descriptor in the answer", socket_name));
  }
  return fd;
}

}  // namespace

struct DeviceSlotPool::Impl {
  // Both sides.
  DevicePoolExport how = DevicePoolExport::kPosixFd;
  int device = 0;
  int slot_count = 0;
  size_t slot_bytes = 0;
  size_t stride = 0;
  size_t allocation_bytes = 0;
  CUdeviceptr base = 0;
  bool owner = false;  // the producer (exporter)
  const VmmApi* vmm = nullptr;
  CUmemGenericAllocationHandle allocation = 0;
  bool mapped = false, reserved = false, allocated = false;
  std::string socket_name;
  cudaIpcMemHandle_t legacy_handle{};
  // Producer.
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> events;
  std::vector<cudaIpcEventHandle_t> event_handles;
  int export_fd = -1, listen_fd = -1, stop_fd = -1;
  std::thread server;
  // Consumer: events opened from the producer's handles, per slot.
  std::vector<cudaEvent_t> opened_events;
  std::vector<cudaIpcEventHandle_t> opened_handles;

  ~Impl() {
    if (server.joinable()) {
      const uint64_t one = 1;
      (void)!write(stop_fd, &one, sizeof(one));
      server.join();
    }
    for (int fd : {listen_fd, stop_fd, export_fd}) {
      if (fd >= 0) close(fd);
    }
    cudaSetDevice(device);
    if (stream) {
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
    for (cudaEvent_t e : events) {
      if (e) cudaEventDestroy(e);
    }
    for (cudaEvent_t e : opened_events) {
      if (e) cudaEventDestroy(e);
    }
    if (how == DevicePoolExport::kLegacyIpc) {
      if (base) owner ? cudaFree(reinterpret_cast<void*>(base)) : cudaIpcCloseMemHandle(reinterpret_cast<void*>(base));
      return;
    }
    if (vmm == nullptr) return;
    // Unmapping does not free while another process still maps the memory: it lives until the last
    // mapping and handle are gone.
    if (mapped) vmm->unmap(base, allocation_bytes);
    if (reserved) vmm->address_free(base, allocation_bytes);
    if (allocated) vmm->release(allocation);
  }

  // Hands the exported descriptor to whoever of this user connects, until the pool is destroyed.
  void Serve() const {
    const Handshake handshake{kHandshakeMagic, device, allocation_bytes, stride, slot_count, 0};
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int connection = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      if (CheckPeerIsUs(connection).ok()) (void)SendFd(connection, export_fd, handshake);
      close(connection);
    }
  }

  Status Listen() {
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return Errno("socket(AF_UNIX)");
    socklen_t length = 0;
    sockaddr_un address = AbstractAddress(socket_name, &length);
    if (bind(listen_fd, reinterpret_cast<sockaddr*>(&address), length) != 0) return Errno("bind @" + socket_name);
    if (listen(listen_fd, 16) != 0) return Errno("listen @" + socket_name);
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0) return Errno("eventfd");
    server = std::thread([this] { Serve(); });
    return Status::Ok();
  }

  CUmemAllocationProp Properties() const {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    return prop;
  }

  // Reserves an address range for the allocation, maps it and makes it accessible from the device.
  Status MapAllocation() {
    VS_RETURN_IF_ERROR(CuStatus(*vmm, vmm->reserve(&base, allocation_bytes, 0, 0, 0), "cuMemAddressReserve"));
    reserved = true;
    VS_RETURN_IF_ERROR(CuStatus(*vmm, vmm->map(base, allocation_bytes, 0, allocation, 0), "cuMemMap"));
    mapped = true;
    CUmemAccessDesc access{};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = device;
    // Read-write on both sides: the consumer only reads, but read-only device mappings are not available
    // on every driver and the slots hold no secrets from it.
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CuStatus(*vmm, vmm->set_access(base, allocation_bytes, &access, 1), "cuMemSetAccess");
  }
};

DeviceSlotPool::DeviceSlotPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceSlotPool::~DeviceSlotPool() = default;

Expected<std::unique_ptr<DeviceSlotPool>> DeviceSlotPool::Create(const std::string& name, int slot_count,
                                                                 size_t slot_bytes, int device, DevicePoolExport how) {
  if (slot_count <= 0 || slot_bytes == 0) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("device slot pool {}: {} slots of {} bytes", name, slot_count, slot_bytes));
  }
  VS_RETURN_IF_ERROR(CudaDeviceAvailable(device));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  VS_CUDA_RETURN_IF_ERROR(cudaFree(nullptr));  // the primary context, which the driver calls below use
  auto impl = std::make_unique<Impl>();
  impl->how = how;
  impl->device = device;
  impl->owner = true;
  impl->slot_count = slot_count;
  impl->slot_bytes = slot_bytes;
  impl->stride = RoundUp(slot_bytes, kSlotAlignment);
  if (how == DevicePoolExport::kPosixFd) {
    VS_ASSIGN_OR_RETURN(impl->vmm, Vmm());
    const CUmemAllocationProp prop = impl->Properties();
    size_t granularity = 0;
    VS_RETURN_IF_ERROR(CuStatus(*impl->vmm, impl->vmm->granularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
                                "cuMemGetAllocationGranularity"));
    impl->allocation_bytes = RoundUp(impl->stride * static_cast<size_t>(slot_count), std::max<size_t>(granularity, 1));
    VS_RETURN_IF_ERROR(CuStatus(*impl->vmm, impl->vmm->create(&impl->allocation, impl->allocation_bytes, &prop, 0), "cuMemCreate"));
    impl->allocated = true;
    VS_RETURN_IF_ERROR(impl->MapAllocation());
    int fd = -1;
    VS_RETURN_IF_ERROR(CuStatus(*impl->vmm,
                                impl->vmm->export_handle(&fd, impl->allocation, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                                "cuMemExportToShareableHandle"));
    impl->export_fd = fd;
    impl->socket_name = (name.size() > 1 && name[0] == '/' ? name.substr(1) : name) + "-fd";
    VS_RETURN_IF_ERROR(impl->Listen());
  } else {
    impl->allocation_bytes = impl->stride * static_cast<size_t>(slot_count);
    void* memory = nullptr;
    VS_CUDA_RETURN_IF_ERROR(cudaMalloc(&memory, impl->allocation_bytes));
    impl->base = reinterpret_cast<CUdeviceptr>(memory);
    VS_CUDA_RETURN_IF_ERROR(cudaIpcGetMemHandle(&impl->legacy_handle, memory));
  }
  VS_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  impl->events.assign(static_cast<size_t>(slot_count), nullptr);
  impl->event_handles.resize(static_cast<size_t>(slot_count));
  for (int i = 0; i < slot_count; ++i) {
    VS_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->events[i], cudaEventInterprocess | cudaEventDisableTiming));
    VS_CUDA_RETURN_IF_ERROR(cudaIpcGetEventHandle(&impl->event_handles[i], impl->events[i]));
  }
  return std::unique_ptr<DeviceSlotPool>(new DeviceSlotPool(std::move(impl)));
}

Expected<std::unique_ptr<DeviceSlotPool>> DeviceSlotPool::Open(const PoolLocator& locator) {
  if (locator.memory != MemoryKind::kDevice) {
    return MakeError(StatusCode::kUnsupported, "the producer's pool is in host shared memory, not device memory");
  }
  if (locator.slot_count <= 0 || locator.slot_bytes == 0 || locator.slot_stride < locator.slot_bytes) {
    return MakeError(StatusCode::kCorruptData, "device slot pool locator: bad geometry");
  }
  const int device = locator.cuda_device;
  VS_RETURN_IF_ERROR(CudaDeviceAvailable(device));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  VS_CUDA_RETURN_IF_ERROR(cudaFree(nullptr));
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  impl->slot_count = locator.slot_count;
  impl->slot_bytes = locator.slot_bytes;
  impl->stride = locator.slot_stride;
  impl->opened_events.assign(static_cast<size_t>(locator.slot_count), nullptr);
  impl->opened_handles.resize(static_cast<size_t>(locator.slot_count));
  if (locator.device_export == static_cast<uint8_t>(DevicePoolExport::kPosixFd)) {
    impl->how = DevicePoolExport::kPosixFd;
    VS_ASSIGN_OR_RETURN(impl->vmm, Vmm());
    impl->socket_name = std::string(locator.shm_name, strnlen(locator.shm_name, sizeof(locator.shm_name)));
    Handshake handshake;
    VS_ASSIGN_OR_RETURN(int fd, ReceiveFd(impl->socket_name, &handshake));
    if (handshake.device != device || handshake.slot_count != locator.slot_count ||
        handshake.slot_stride != locator.slot_stride ||
        handshake.allocation_bytes < locator.slot_stride * static_cast<uint64_t>(locator.slot_count)) {
      close(fd);
      return MakeError(StatusCode::kCorruptData, fmt::format("@{}: the pool's geometry differs from the channel's", impl->socket_name));
    }
    impl->allocation_bytes = handshake.allocation_bytes;
    // The handle argument is the descriptor's value passed as a pointer-sized integer.
    CUresult imported = impl->vmm->import_handle(&impl->allocation, reinterpret_cast<void*>(static_cast<uintptr_t>(fd)),
                                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    close(fd);  // the allocation handle keeps the memory; the descriptor is no longer needed
    VS_RETURN_IF_ERROR(CuStatus(*impl->vmm, imported, "cuMemImportFromShareableHandle"));
    impl->allocated = true;
    VS_RETURN_IF_ERROR(impl->MapAllocation());
  } else if (locator.device_export == static_cast<uint8_t>(DevicePoolExport::kLegacyIpc)) {
    impl->how = DevicePoolExport::kLegacyIpc;
    impl->allocation_bytes = locator.slot_stride * static_cast<size_t>(locator.slot_count);
    static_assert(sizeof(cudaIpcMemHandle_t) == sizeof(locator.ipc_handle));
    std::memcpy(&impl->legacy_handle, locator.ipc_handle, sizeof(impl->legacy_handle));
    void* memory = nullptr;
    VS_CUDA_RETURN_IF_ERROR(cudaIpcOpenMemHandle(&memory, impl->legacy_handle, cudaIpcMemLazyEnablePeerAccess));
    impl->base = reinterpret_cast<CUdeviceptr>(memory);
  } else {
    return MakeError(StatusCode::kCorruptData, fmt::format("device slot pool export {} is unknown", locator.device_export));
  }
  return std::unique_ptr<DeviceSlotPool>(new DeviceSlotPool(std::move(impl)));
}

int DeviceSlotPool::slot_count() const { return impl_->slot_count; }
size_t DeviceSlotPool::slot_bytes() const { return impl_->slot_bytes; }
DevicePoolExport DeviceSlotPool::export_kind() const { return impl_->how; }
int DeviceSlotPool::device() const { return impl_->device; }

std::byte* DeviceSlotPool::slot(int index) const {
  return reinterpret_cast<std::byte*>(impl_->base + impl_->stride * static_cast<size_t>(index));
}

PoolLocator DeviceSlotPool::locator() const {
  PoolLocator locator;
  locator.memory = MemoryKind::kDevice;
  locator.device_export = static_cast<uint8_t>(impl_->how);
  locator.slot_count = impl_->slot_count;
  locator.slot_bytes = impl_->slot_bytes;
  locator.slot_stride = impl_->stride;
  locator.cuda_device = impl_->device;
  std::memcpy(locator.shm_name, impl_->socket_name.data(), std::min(impl_->socket_name.size(), sizeof(locator.shm_name) - 1));
  static_assert(sizeof(cudaIpcMemHandle_t) == sizeof(locator.ipc_handle));
  if (impl_->how == DevicePoolExport::kLegacyIpc) std::memcpy(locator.ipc_handle, &impl_->legacy_handle, sizeof(locator.ipc_handle));
  return locator;
}

Expected<void*> DeviceSlotPool::WriteDoneEvent(const FrameDescriptor& d) {
  if (d.slot < 0 || d.slot >= impl_->slot_count) {
    return MakeError(StatusCode::kCorruptData, fmt::format("video {}: slot {} outside the pool", d.video_id, d.slot));
  }
  if (!d.has_cuda_event) {
    return MakeError(StatusCode::kCorruptData, fmt::format("video {} frame {}: a device frame without the event that says "
                                                           "it is written", d.video_id, d.frame_index));
  }
  static_assert(sizeof(cudaIpcEventHandle_t) == kCudaIpcEventHandleBytes);
  const size_t i = static_cast<size_t>(d.slot);
  cudaEvent_t& event = impl_->opened_events[i];
  if (event == nullptr || std::memcmp(&impl_->opened_handles[i], d.cuda_event_handle, kCudaIpcEventHandleBytes) != 0) {
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(impl_->device));
    if (event) cudaEventDestroy(event);
    event = nullptr;
    cudaIpcEventHandle_t handle;
    std::memcpy(&handle, d.cuda_event_handle, sizeof(handle));
    VS_CUDA_RETURN_IF_ERROR(cudaIpcOpenEventHandle(&event, handle));
    impl_->opened_handles[i] = handle;
  }
  return static_cast<void*>(event);
}

Status DeviceSlotPool::WriteFrame(int index, const FrameView& frame, uint32_t chroma_offset, uint8_t* event_handle) {
  Impl& p = *impl_;
  if (!p.owner) return MakeError(StatusCode::kInvalidArgument, "only the pool's producer writes frames into it");
  if (index < 0 || index >= p.slot_count) return MakeError(StatusCode::kInvalidArgument, fmt::format("slot {} outside the pool", index));
  const FrameInfo& info = frame.info;
  if (chroma_offset < info.luma_bytes() || chroma_offset + info.chroma_bytes() > p.slot_bytes) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("a {}x{} frame (pitch {}) does not fit a {} byte slot", info.width, info.height, info.pitch, p.slot_bytes));
  }
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(p.device));
  auto* dst = reinterpret_cast<uint8_t*>(slot(index));
  // Whole rows, padding included: the slot holds the frame exactly as the decoder's surface did.
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(dst, info.pitch, frame.luma, info.pitch, info.pitch, info.height,
                                            cudaMemcpyDefault, p.stream));
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(dst + chroma_offset, info.pitch, frame.chroma, info.pitch, info.pitch,
                                            info.chroma_height(), cudaMemcpyDefault, p.stream));
  VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(p.events[static_cast<size_t>(index)], p.stream));
  std::memcpy(event_handle, &p.event_handles[static_cast<size_t>(index)], kCudaIpcEventHandleBytes);
  return Status::Ok();
}

Status DeviceSlotPool::MarkWritten(int index, uint8_t* event_handle) {
  Impl& p = *impl_;
  if (!p.owner) return MakeError(StatusCode::kInvalidArgument, "only the pool's producer marks slots written");
  if (index < 0 || index >= p.slot_count) return MakeError(StatusCode::kInvalidArgument, fmt::format("slot {} outside the pool", index));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(p.device));
  VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(p.events[static_cast<size_t>(index)], p.stream));
  std::memcpy(event_handle, &p.event_handles[static_cast<size_t>(index)], kCudaIpcEventHandleBytes);
  return Status::Ok();
}

Expected<bool> DeviceSlotPool::WriteFinished(int slot) {
  if (!impl_->owner || slot < 0 || slot >= impl_->slot_count) return MakeError(StatusCode::kInvalidArgument, "WriteFinished: no such slot of this producer");
  const cudaError_t state = cudaEventQuery(impl_->events[static_cast<size_t>(slot)]);
  if (state == cudaErrorNotReady) return false;
  VS_CUDA_RETURN_IF_ERROR(state);
  return true;
}

Status DeviceSlotPool::WaitForWrites() {
  if (!impl_->stream) return Status::Ok();
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(impl_->device));
  VS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->stream));
  return Status::Ok();
}

}  // namespace vidscan::ipc
