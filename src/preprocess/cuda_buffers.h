// CUDA runtime helpers for the preprocess stage, its benchmark and its GPU tests: a checked-call macro
// that turns a CUDA error into a Status, and RAII owners for device memory, pinned host memory and events.
// Needs the CUDA runtime: include only from .cu files, *_cuda.cpp files or code under VIDSCAN_HAVE_CUDA.
// No fmt here: its header-only consteval code does not compile under nvcc.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "core/status.h"

namespace vidscan {

inline Status CudaStatus(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return Status::Ok();
  const StatusCode code = err == cudaErrorMemoryAllocation ? StatusCode::kOutOfMemory
                          : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver)
                              ? StatusCode::kUnavailable
                              : StatusCode::kInternal;
  return MakeError(code, std::string(call) + ": " + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

}  // namespace vidscan

#define VS_CUDA_RETURN_IF_ERROR(call) VS_RETURN_IF_ERROR(::vidscan::CudaStatus((call), #call))

namespace vidscan {

namespace cuda_detail {
struct DeviceAllocator {
  static cudaError_t Allocate(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
  static void Free(void* p) { cudaFree(p); }  // nothing useful to do with a failure while releasing
  static constexpr const char* kCall = "cudaMalloc";
};
struct PinnedAllocator {
  static cudaError_t Allocate(void** p, size_t bytes) { return cudaMallocHost(p, bytes); }
  static void Free(void* p) { cudaFreeHost(p); }
  static constexpr const char* kCall = "cudaMallocHost";
};
struct EventTraits {
  using Handle = cudaEvent_t;
  static cudaError_t Create(Handle* h, unsigned flags) { return cudaEventCreateWithFlags(h, flags); }
  static void Destroy(Handle h) { cudaEventDestroy(h); }
  static constexpr const char* kCall = "cudaEventCreateWithFlags";
};
struct StreamTraits {
  using Handle = cudaStream_t;
  static cudaError_t Create(Handle* h, unsigned flags) { return cudaStreamCreateWithFlags(h, flags); }
  static void Destroy(Handle h) { cudaStreamDestroy(h); }
  static constexpr const char* kCall = "cudaStreamCreateWithFlags";
};
}  // namespace cuda_detail

// Memory from one CUDA allocator (device or page-locked host), freed on destruction.
template <typename Allocator>
class CudaMemory {
 public:
  CudaMemory() = default;
  static Expected<CudaMemory> Allocate(size_t bytes) {
    CudaMemory m;
    if (bytes > 0) VS_RETURN_IF_ERROR(CudaStatus(Allocator::Allocate(&m.data_, bytes), Allocator::kCall));
    m.bytes_ = bytes;
    return Expected<CudaMemory>(std::move(m));
  }
  CudaMemory(CudaMemory&& o) noexcept : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  CudaMemory& operator=(CudaMemory&& o) noexcept {
    if (this != &o) {
      Reset();
      data_ = std::exchange(o.data_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  CudaMemory(const CudaMemory&) = delete;
  CudaMemory& operator=(const CudaMemory&) = delete;
  ~CudaMemory() { Reset(); }

  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  void Reset() {
    if (data_ != nullptr) Allocator::Free(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

using DeviceBuffer = CudaMemory<cuda_detail::DeviceAllocator>;  // device memory
using PinnedBuffer = CudaMemory<cuda_detail::PinnedAllocator>;  // page-locked host memory, for async copies

// An event or a stream, destroyed with its owner.
template <typename Traits>
class CudaHandle {
 public:
  using Handle = typename Traits::Handle;
  CudaHandle() = default;
  static Expected<CudaHandle> Create(unsigned flags) {
    CudaHandle h;
    VS_RETURN_IF_ERROR(CudaStatus(Traits::Create(&h.handle_, flags), Traits::kCall));
    return Expected<CudaHandle>(std::move(h));
  }
  CudaHandle(CudaHandle&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  CudaHandle& operator=(CudaHandle&& o) noexcept {
    if (this != &o) {
      Reset();
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  CudaHandle(const CudaHandle&) = delete;
  CudaHandle& operator=(const CudaHandle&) = delete;
  ~CudaHandle() { Reset(); }

  Handle get() const { return handle_; }

 private:
  void Reset() {
    if (handle_ != nullptr) Traits::Destroy(handle_);
    handle_ = nullptr;
  }
  Handle handle_ = nullptr;
};

using CudaEvent = CudaHandle<cuda_detail::EventTraits>;    // Create(cudaEventDefault / cudaEventDisableTiming)
using CudaStream = CudaHandle<cuda_detail::StreamTraits>;  // Create(cudaStreamNonBlocking / cudaStreamDefault)

// kUnavailable unless GPU `index` exists and the driver answers.
inline Status CudaDeviceAvailable(int index) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    return MakeError(StatusCode::kUnavailable, std::string("no CUDA device: ") + cudaGetErrorString(err));
  }
  if (index < 0 || index >= count) {
    return MakeError(StatusCode::kUnavailable, "GPU " + std::to_string(index) + " does not exist (" + std::to_string(count) + " CUDA devices)");
  }
  return Status::Ok();
}

}  // namespace vidscan
