// A doorbell: one futex word in shared memory that a process sleeps on until another process rings it.
//
// Every vidscan worker sleeps on exactly one doorbell; whatever gives it work (a frame descriptor, a
// returned slot, a command from the supervisor) is published first and the bell rung after, so one wait
// covers every ring the process reads. A futex and not a process-shared mutex/condition variable because
// a peer can die at any instant: a futex holds no lock a dead process could leave taken, and the waker
// never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace vidscan::ipc {

// Lives in shared memory (a zero-filled page is a valid, silent doorbell). Standard layout, 8 bytes.
struct Doorbell {
  std::atomic<uint32_t> sequence{0};  // the futex word: bumped by every Ring
  std::atomic<uint32_t> sleepers{0};  // waiters inside FUTEX_WAIT; lets Ring skip the syscall when zero

  // Read the sequence BEFORE looking for work; pass it to Wait. A Ring between the two makes Wait return
  // at once, so no wake-up is lost.
  uint32_t Arm() const { return sequence.load(std::memory_order_seq_cst); }

  // Wakes every process sleeping on this bell. Call after publishing the work (release stores).
  void Ring();

  // Sleeps until the bell rings after `armed` was read, or `timeout` passes. Returns false on timeout.
  // May return true spuriously (a signal, a ring meant for other work): callers re-check their rings.
  bool Wait(uint32_t armed, std::chrono::nanoseconds timeout);
};

static_assert(std::atomic<uint32_t>::is_always_lock_free,
              "the doorbell's futex word must be a plain lock-free 32-bit word in shared memory");
static_assert(sizeof(Doorbell) == 8);

}  // namespace vidscan::ipc
