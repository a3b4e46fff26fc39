// A bounded single-producer single-consumer ring of fixed-size trivially copyable messages that lives in
// shared memory and is used from two processes.
//
// Lock-free: the producer owns `head`, the consumer owns `tail`, each only reads the other's (acquire) and
// publishes its own (release). Single producer / single consumer on purpose: if either process dies at any
// instant the ring stays consistent (a half-written message is simply not published), which no
// multi-producer ring can promise — a producer killed between claiming and publishing a cell would block
// the consumer for ever. Fan-in is several rings read by one process (see Doorbell).
//
// Blocking Push/Pop sleep on doorbells with a timeout: a full ring blocks the producer (back-pressure,
// nothing is ever dropped) and the timeout lets a waiter look up from time to time and notice that its
// peer or its supervisor died, or that it has been told something else.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <type_traits>

#include "core/status.h"
#include "ipc/doorbell.h"

namespace vidscan::ipc {

enum class RingWait : uint8_t {
  kOk,        // the message went in / came out
  kTimedOut,  // nothing happened before the timeout
  kClosed,    // the ring was closed (Pop: and it is drained)
};

// The ring's header at the start of its memory. Counters run freely modulo 2^32 (capacity is a power of
// two below 2^31, so head - tail is always the fill level).
struct RingHeader {
  static constexpr uint32_t kMagic = 0x56535247;  // "VSRG"
  static constexpr uint32_t kLayoutVersion = 1;

  uint32_t magic = 0;
  uint32_t layout_version = 0;
  uint32_t capacity = 0;       // messages, a power of two
  uint32_t message_bytes = 0;  // sizeof(T) of whoever formatted the ring; checked on Attach
  std::atomic<uint32_t> closed{0};
  // Producer and consumer counters on their own cache lines: they are written by different processes.
  alignas(64) std::atomic<uint32_t> head{0};  // messages ever pushed; written by the producer only
  alignas(64) std::atomic<uint32_t> tail{0};  // messages ever popped; written by the consumer only
  // Used when the caller gives no doorbells of its own: `readable` is rung by Push, `writable` by Pop.
  alignas(64) Doorbell readable;
  alignas(64) Doorbell writable;
};

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring messages are copied byte-wise between processes");

 public:
  static constexpr size_t kHeaderBytes = (sizeof(RingHeader) + 63) / 64 * 64;

  // The capacity a ring of at least `min_capacity` messages gets (the next power of two).
  static uint32_t RoundCapacity(uint32_t min_capacity) {
    uint32_t capacity = 1;
    while (capacity < min_capacity) capacity <<= 1;
    return capacity;
  }
  // Bytes of shared memory a ring of RoundCapacity(min_capacity) messages occupies (a multiple of 64).
  static size_t BytesFor(uint32_t min_capacity) {
    return kHeaderBytes + (static_cast<size_t>(RoundCapacity(min_capacity)) * sizeof(T) + 63) / 64 * 64;
  }

  // Lays out a new, empty ring in `memory` (64-byte aligned, BytesFor(min_capacity) long).
  //
  // `readable` and `writable` are the doorbells to ring and sleep on; nullptr means the ring's own (in its
  // header). A process that reads several rings passes its one doorbell as `readable` of all of them, and
  // every other party must attach with the same choice (a mismatch only costs latency: waiters then wake
  // on their timeout).
  static Expected<SpscRing> Format(void* memory, size_t bytes, uint32_t min_capacity, Doorbell* readable = nullptr,
                                   Doorbell* writable = nullptr) {
    if (min_capacity == 0 || min_capacity > (1u << 30)) {
      return MakeError(StatusCode::kInvalidArgument, "ring capacity must be between 1 and 2^30 messages");
    }
    if (reinterpret_cast<uintptr_t>(memory) % 64 != 0 || bytes < BytesFor(min_capacity)) {
      return MakeError(StatusCode::kInvalidArgument, "ring memory is misaligned or too small");
    }
    auto* header = new (memory) RingHeader();
    header->capacity = RoundCapacity(min_capacity);
    header->message_bytes = static_cast<uint32_t>(sizeof(T));
    header->layout_version = RingHeader::kLayoutVersion;
    // Another process attaches only after being told the ring exists (a control message, published with
    // release/acquire), which orders these writes before its reads.
    header->magic = RingHeader::kMagic;
    return SpscRing(header, readable, writable);
  }

  // Uses a ring another process formatted; checks that it is one, for messages of this size.
  static Expected<SpscRing> Attach(void* memory, size_t bytes, Doorbell* readable = nullptr,
                                   Doorbell* writable = nullptr) {
    if (reinterpret_cast<uintptr_t>(memory) % 64 != 0 || bytes < kHeaderBytes) {
      return MakeError(StatusCode::kInvalidArgument, "ring memory is misaligned or too small");
    }
    auto* header = std::launder(reinterpret_cast<RingHeader*>(memory));
    if (header->magic != RingHeader::kMagic || header->layout_version != RingHeader::kLayoutVersion) {
      return MakeError(StatusCode::kCorruptData, "no ring of this vidscan version at this address");
    }
    if (header->message_bytes != sizeof(T)) {
      return MakeError(StatusCode::kCorruptData, "ring holds messages of another size");
    }
    uint32_t cap = header->capacity;
    if (cap == 0 || (cap & (cap - 1)) != 0 || bytes < BytesFor(cap)) {
      return MakeError(StatusCode::kCorruptData, "ring header claims more memory than it has");
    }
    return SpscRing(header, readable, writable);
  }

  SpscRing() = default;

  uint32_t capacity() const { return capacity_; }
  // Messages waiting (exact for the producer and the consumer; a snapshot for anyone else).
  uint32_t size() const {
    return header_->head.load(std::memory_order_acquire) - header_->tail.load(std::memory_order_acquire);
  }
  bool empty() const { return size() == 0; }
  bool closed() const { return header_->closed.load(std::memory_order_acquire) != 0; }
  RingHeader* header() const { return header_; }
  Doorbell* readable_bell() const { return readable_; }
  Doorbell* writable_bell() const { return writable_; }

  // Producer. False when full (or closed).
  bool TryPush(const T& message) {
    if (closed()) return false;
    uint32_t head = header_->head.load(std::memory_order_relaxed);
    if (head - header_->tail.load(std::memory_order_acquire) >= capacity_) return false;
    std::memcpy(Cell(head), &message, sizeof(T));
    header_->head.store(head + 1, std::memory_order_release);
    readable_->Ring();
    return true;
  }

  // Producer. Blocks while the ring is full, at most `timeout`.
  RingWait Push(const T& message, std::chrono::nanoseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint32_t armed = writable_->Arm();
      if (closed()) return RingWait::kClosed;
      if (TryPush(message)) return RingWait::kOk;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return RingWait::kTimedOut;
      writable_->Wait(armed, left);
    }
  }

  // Consumer. Nothing when empty.
  std::optional<T> TryPop() {
    uint32_t tail = header_->tail.load(std::memory_order_relaxed);
    if (header_->head.load(std::memory_order_acquire) == tail) return std::nullopt;
    T message;
    std::memcpy(&message, Cell(tail), sizeof(T));
    header_->tail.store(tail + 1, std::memory_order_release);
    writable_->Ring();
    return message;
  }

  // Consumer. Blocks while the ring is empty, at most `timeout`; kClosed once closed and drained.
  RingWait Pop(T* out, std::chrono::nanoseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint32_t armed = readable_->Arm();
      if (std::optional<T> message = TryPop()) {
        *out = *message;
        return RingWait::kOk;
      }
      if (closed()) return RingWait::kClosed;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return RingWait::kTimedOut;
      readable_->Wait(armed, left);
    }
  }

  // Either side: no more pushes; waiters on both sides wake.
  void Close() {
    header_->closed.store(1, std::memory_order_release);
    readable_->Ring();
    writable_->Ring();
  }

  // Empties the ring. Only for the one live party once the other is known dead (reaped): it touches the
  // counter the dead side owned.
  void ClearWithoutPeer() {
    header_->tail.store(header_->head.load(std::memory_order_acquire), std::memory_order_release);
    writable_->Ring();
  }

 private:
  SpscRing(RingHeader* header, Doorbell* readable, Doorbell* writable)
      : header_(header),
        readable_(readable ? readable : &header->readable),
        writable_(writable ? writable : &header->writable),
        capacity_(header->capacity) {}

  std::byte* Cell(uint32_t counter) const {
    return reinterpret_cast<std::byte*>(header_) + kHeaderBytes +
           static_cast<size_t>(counter & (capacity_ - 1)) * sizeof(T);
  }

  RingHeader* header_ = nullptr;
  Doorbell* readable_ = nullptr;
  Doorbell* writable_ = nullptr;
  // Copied once, validated: the header is writable by the peer, and the cell index must stay in bounds
  // whatever it writes there.
  uint32_t capacity_ = 0;
};

}  // namespace vidscan::ipc
