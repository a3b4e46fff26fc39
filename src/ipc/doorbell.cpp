#include "ipc/doorbell.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace vidscan::ipc {
namespace {

// Shared (not FUTEX_PRIVATE_FLAG) futex operations: the word is mapped by several processes.
long Futex(std::atomic<uint32_t>* word, int op, uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, timeout, nullptr, 0);
}

}  // namespace

void Doorbell::Ring() {
  // Dekker pattern with Wait: we write `sequence` then read `sleepers`; a waiter writes `sleepers` then
  // (in the kernel) reads `sequence`. Sequentially consistent on both sides, so at least one of us sees
  // the other: either we wake it, or its FUTEX_WAIT sees the new sequence and returns at once.
  sequence.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) != 0) Futex(&sequence, FUTEX_WAKE, INT_MAX, nullptr);
}

bool Doorbell::Wait(uint32_t armed, std::chrono::nanoseconds timeout) {
  if (timeout <= std::chrono::nanoseconds::zero()) return sequence.load() != armed;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  // A waiter killed inside FUTEX_WAIT leaves `sleepers` one too high: Ring then makes a useless syscall,
  // nothing worse.
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  long rc = Futex(&sequence, FUTEX_WAIT, armed, &ts);
  int err = rc == 0 ? 0 : errno;
  sleepers.fetch_sub(1, std::memory_order_seq_cst);
  if (rc == 0) return true;
  if (err == ETIMEDOUT) return sequence.load() != armed;
  return true;  // EAGAIN (rang before we slept) or EINTR: let the caller look again
}

}  // namespace vidscan::ipc
