// The process layer of the multi-process pipeline (issue 7), with host shared memory in place of the
// device pool: shared memory, futex doorbells, SPSC rings, descriptors, slot pools and channels, the
// process supervisor, and whole jobs of real worker processes (tests/support/ipc_test_worker.cpp) with
// workers and supervisors killed mid-run.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "ipc/doorbell.h"
#include "ipc/frame_channel.h"
#include "ipc/frame_descriptor.h"
#include "ipc/host_slot_pool.h"
#include "ipc/job_supervisor.h"
#include "ipc/ring.h"
#include "ipc/shm_region.h"
#include "ipc/supervisor.h"
#include "support/ipc_synthetic.h"
#include "support/test_support.h"

extern char** environ;

namespace vidscan::ipc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A fresh tag per job or object in this test process, so tests never collide on names.
std::string UniqueTag() {
  static int counter = 0;
  return fmt::format("t{}", counter++);
}

std::string TestShmName(const std::string& what) { return *ShmName(getpid(), UniqueTag(), what); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ExistsInDevShm(const std::string& name) { return fs::exists("/dev/shm" + name); }

// Waits for a forked child and returns its exit code (or 128 + signal).
int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// ---------------------------------------------------------------------------------------------------
// Shared memory

TEST(IpcShm, CreateOpenShareBytesAndOwnerUnlinks) {
  const std::string name = TestShmName("region");
  {
    auto created = ShmRegion::Create(name, 10000);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_TRUE(created->owns_name());
    EXPECT_EQ(created->size(), 10000u);
    EXPECT_EQ(created->data()[9999], std::byte{0});  // zero-filled
    auto opened = ShmRegion::Open(name);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_FALSE(opened->owns_name());
    EXPECT_EQ(opened->size(), 10000u);
    EXPECT_NE(opened->data(), created->data());  // two mappings ...
    created->data()[1234] = std::byte{0x5A};
    EXPECT_EQ(opened->data()[1234], std::byte{0x5A});  // ... of the same bytes
    ShmRegion moved = std::move(*created);
    EXPECT_TRUE(moved.owns_name());
    EXPECT_TRUE(ExistsInDevShm(name));
  }
  EXPECT_FALSE(ExistsInDevShm(name)) << "the owner unlinks its name when destroyed";
  auto reopened = ShmRegion::Open(name);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kNotFound);
}

TEST(IpcShm, CreateIsExclusiveAndPrivateToTheUser) {
  const std::string name = TestShmName("excl");
  auto first = ShmRegion::Create(name, 4096);
  ASSERT_TRUE(first.ok());
  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm" + name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, getuid());
  auto second = ShmRegion::Create(name, 4096);
  ASSERT_FALSE(second.ok()) << "O_EXCL: a name in use is never taken over";
  EXPECT_NE(second.status().message().find(name), std::string::npos);
  // The failed create did not unlink the first owner's object.
  EXPECT_TRUE(ExistsInDevShm(name));
  ASSERT_TRUE(first->Unlink().ok());
  EXPECT_FALSE(ExistsInDevShm(name));
}

TEST(IpcShm, NamesCarryUidPidAndTag) {
  auto name = ShmName(1234, "job_7.a", "ctl");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, fmt::format("/vidscan-{}-1234-job_7.a-ctl", getuid()));
  EXPECT_FALSE(ShmJobPrefix(1234, "").ok());
  EXPECT_FALSE(ShmJobPrefix(1234, "a-b").ok()) << "'-' would make the name ambiguous";
  EXPECT_FALSE(ShmJobPrefix(1234, "a/b").ok());
  EXPECT_FALSE(ShmRegion::Create("no-leading-slash", 10).ok());
}

TEST(IpcShm, RemoveStaleShmRemovesOnlyObjectsOfDeadSupervisors) {
  // A pid that is surely dead: a child we reaped.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_EQ(WaitChild(dead), 0);
  const std::string stale1 = *ShmName(dead, "old", "ctl");
  const std::string stale2 = *ShmName(dead, "old", "d0g1-pool");
  const std::string live_parent = *ShmName(getppid(), UniqueTag(), "ctl");  // our parent is alive
  const std::string ours = TestShmName("ctl");
  const std::string foreign = fmt::format("/notvidscan-{}-{}-x-ctl", getuid(), dead);
  std::vector<ShmRegion> regions;
  for (const std::string& name : {stale1, stale2, live_parent, ours, foreign}) {
    auto region = ShmRegion::Create(name, 4096);
    ASSERT_TRUE(region.ok()) << region.status().ToString();
    region->ReleaseName();  // left behind, as a killed job leaves them
    regions.push_back(std::move(*region));
  }
  std::vector<std::string> removed = RemoveStaleShm();
  std::set<std::string> removed_set(removed.begin(), removed.end());
  EXPECT_TRUE(removed_set.count(stale1));
  EXPECT_TRUE(removed_set.count(stale2));
  EXPECT_FALSE(ExistsInDevShm(stale1));
  EXPECT_FALSE(ExistsInDevShm(stale2));
  EXPECT_TRUE(ExistsInDevShm(live_parent));
  EXPECT_TRUE(ExistsInDevShm(ours));
  EXPECT_TRUE(ExistsInDevShm(foreign));
  for (const std::string& name : {live_parent, ours, foreign}) EXPECT_TRUE(UnlinkShm(name).ok());
}

// ---------------------------------------------------------------------------------------------------
// Doorbell and ring

TEST(IpcDoorbell, WaitTimesOutAndARingWakesAnotherProcess) {
  auto region = ShmRegion::Create(TestShmName("bell"), 4096);
  ASSERT_TRUE(region.ok());
  auto* bell = new (region->data()) Doorbell();
  auto start = Clock::now();
  EXPECT_FALSE(bell->Wait(bell->Arm(), 50ms));
  EXPECT_GE(Clock::now() - start, 45ms);
  // A ring between Arm and Wait is not lost.
  uint32_t armed = bell->Arm();
  bell->Ring();
  EXPECT_TRUE(bell->Wait(armed, 5s));

  const uint32_t before = bell->Arm();
  pid_t child = fork();
  if (child == 0) {
    // Woken well before the 10 s timeout -> 0; timed out -> 1.
    bool rang = bell->Wait(before, 10s);
    _exit(rang ? 0 : 1);
  }
  std::this_thread::sleep_for(100ms);
  start = Clock::now();
  bell->Ring();
  EXPECT_EQ(WaitChild(child), 0);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(IpcRing, FifoCapacityAndCounterWrapAround) {
  using Ring = SpscRing<uint64_t>;
  EXPECT_EQ(Ring::RoundCapacity(5), 8u);
  auto region = ShmRegion::Create(TestShmName("ring"), Ring::BytesFor(5));
  ASSERT_TRUE(region.ok());
  auto ring = Ring::Format(region->data(), region->size(), 5);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  EXPECT_EQ(ring->capacity(), 8u);
  // Start the counters just below 2^32 so that they wrap during the test.
  ring->header()->head.store(0xFFFFFFFAu);
  ring->header()->tail.store(0xFFFFFFFAu);
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 5; ++round) {
    while (ring->TryPush(next_in)) ++next_in;
    EXPECT_EQ(ring->size(), 8u) << "a full ring refuses, it never overwrites";
    for (int i = 0; i < 3; ++i) {
      auto value = ring->TryPop();
      ASSERT_TRUE(value.has_value());
      EXPECT_EQ(*value, next_out++);
    }
  }
  while (auto value = ring->TryPop()) EXPECT_EQ(*value, next_out++);
  EXPECT_EQ(next_in, next_out);
  EXPECT_TRUE(ring->empty());
  EXPECT_LT(ring->header()->head.load(), 0x100u) << "the counters wrapped";
}

TEST(IpcRing, AttachChecksTheLayout) {
  auto region = ShmRegion::Create(TestShmName("ring"), SpscRing<uint64_t>::BytesFor(16));
  ASSERT_TRUE(region.ok());
  EXPECT_FALSE(SpscRing<uint64_t>::Attach(region->data(), region->size()).ok()) << "nothing formatted yet";
  ASSERT_TRUE(SpscRing<uint64_t>::Format(region->data(), region->size(), 16).ok());
  EXPECT_TRUE(SpscRing<uint64_t>::Attach(region->data(), region->size()).ok());
  EXPECT_FALSE(SpscRing<uint32_t>::Attach(region->data(), region->size()).ok()) << "another message size";
  EXPECT_FALSE(SpscRing<uint64_t>::Attach(region->data(), 128).ok()) << "memory shorter than the ring";
  EXPECT_FALSE(SpscRing<uint64_t>::Format(region->data(), region->size(), 1024).ok()) << "too small for 1024";
}

TEST(IpcRing, FullRingBlocksTheProducerProcessAndLosesNothing) {
  using Ring = SpscRing<uint64_t>;
  constexpr uint32_t kCapacity = 16;
  constexpr uint64_t kMessages = 200000;
  const std::string name = TestShmName("bp");
  auto region = ShmRegion::Create(name, Ring::BytesFor(kCapacity) + 64);
  ASSERT_TRUE(region.ok());
  auto ring = Ring::Format(region->data(), region->size(), kCapacity);
  ASSERT_TRUE(ring.ok());
  auto* pushed = new (region->data() + Ring::BytesFor(kCapacity)) std::atomic<uint64_t>(0);

  pid_t child = fork();
  if (child == 0) {
    // The producer maps the ring on its own, by name, as a worker would.
    auto mine = ShmRegion::Open(name);
    if (!mine.ok()) _exit(2);
    auto producer = Ring::Attach(mine->data(), Ring::BytesFor(kCapacity));
    if (!producer.ok()) _exit(3);
    auto* count = reinterpret_cast<std::atomic<uint64_t>*>(mine->data() + Ring::BytesFor(kCapacity));
    for (uint64_t i = 0; i < kMessages; ++i) {
      if (producer->Push(i, 10s) != RingWait::kOk) _exit(4);
      count->store(i + 1);
    }
    _exit(0);
  }
  // Nobody consumes for a while: the producer fills the ring and then waits (it does not drop, and it
  // does not run ahead).
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(pushed->load(), kCapacity);
  EXPECT_EQ(ring->size(), kCapacity);
  for (uint64_t expected = 0; expected < kMessages; ++expected) {
    uint64_t value = ~0ull;
    ASSERT_EQ(ring->Pop(&value, 10s), RingWait::kOk) << "at message " << expected;
    ASSERT_EQ(value, expected);
    if (expected % 50000 == 0) {
      // Whatever the interleaving, the producer is never more than a ring ahead.
      EXPECT_LE(pushed->load(), expected + 1 + kCapacity);
    }
  }
  EXPECT_EQ(WaitChild(child), 0);
  EXPECT_TRUE(ring->empty());
}

TEST(IpcRing, PopTimesOutAndCloseWakesBothSides) {
  auto region = ShmRegion::Create(TestShmName("ring"), SpscRing<int>::BytesFor(2));
  ASSERT_TRUE(region.ok());
  auto ring = SpscRing<int>::Format(region->data(), region->size(), 2);
  ASSERT_TRUE(ring.ok());
  int value = 0;
  auto start = Clock::now();
  EXPECT_EQ(ring->Pop(&value, 30ms), RingWait::kTimedOut);
  EXPECT_GE(Clock::now() - start, 25ms);
  ASSERT_TRUE(ring->TryPush(1));
  ASSERT_TRUE(ring->TryPush(2));
  EXPECT_EQ(ring->Push(3, 30ms), RingWait::kTimedOut);
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    ring->Close();
  });
  EXPECT_EQ(ring->Push(3, 10s), RingWait::kClosed);
  closer.join();
  // A closed ring still hands out what it holds, then says closed.
  EXPECT_EQ(ring->Pop(&value, 1s), RingWait::kOk);
  EXPECT_EQ(value, 1);
  EXPECT_EQ(ring->Pop(&value, 1s), RingWait::kOk);
  EXPECT_EQ(value, 2);
  EXPECT_EQ(ring->Pop(&value, 1s), RingWait::kClosed);
}

// ---------------------------------------------------------------------------------------------------
// Descriptors, slot pool, channel

TEST(IpcFrameDescriptor, CarriesAFrameAndAnEndStatus) {
  FrameInfo info;
  info.stream_id = 7;
  info.frame_index = 123456789012;
  info.pts_seconds = 4115.2;
  info.width = 1920;
  info.height = 1080;
  info.pitch = 2048;
  info.format = PixelFormat::kP016;
  info.color_space = ColorSpace::kBT2020;
  info.color_range = ColorRange::kFull;
  info.keyframe = true;
  FrameDescriptor d = MakeFrameDescriptor(99, 3, 5, info, 2048 * 1088);
  EXPECT_EQ(d.kind, DescriptorKind::kFrame);
  EXPECT_EQ(d.video_id, 99u);
  EXPECT_EQ(d.attempt, 3u);
  EXPECT_EQ(d.slot, 5);
  FrameInfo back = InfoOf(d);
  EXPECT_EQ(back.stream_id, 7);
  EXPECT_EQ(back.frame_index, 123456789012);
  EXPECT_DOUBLE_EQ(back.pts_seconds, 4115.2);
  EXPECT_EQ(back.width, 1920);
  EXPECT_EQ(back.height, 1080);
  EXPECT_EQ(back.pitch, 2048);
  EXPECT_EQ(back.format, PixelFormat::kP016);
  EXPECT_EQ(back.color_space, ColorSpace::kBT2020);
  EXPECT_EQ(back.color_range, ColorRange::kFull);
  EXPECT_TRUE(back.keyframe);
  EXPECT_EQ(sizeof(d.cuda_event_handle), 64u);

  // End of video: the status survives, a long message is cut at a character boundary.
  std::string long_message(200, 'x');
  long_message.replace(110, 2, "\xC3\xA9");  // 'é' straddling the cut
  FrameDescriptor end = MakeVideoEnd(99, 3, MakeError(StatusCode::kCorruptData, long_message));
  Status status = StatusOf(end);
  EXPECT_EQ(status.code(), StatusCode::kCorruptData);
  EXPECT_EQ(status.message(), std::string(110, 'x'));
  EXPECT_TRUE(StatusOf(MakeVideoEnd(1, 1, Status::Ok())).ok());
}

TEST(IpcFrameDescriptor, ValidationKeepsReadsInsideTheSlot) {
  const PackedFrameLayout layout = PackFrame(64, 36, PixelFormat::kNV12);
  EXPECT_EQ(layout.pitch, 64);
  EXPECT_EQ(layout.chroma_offset, 64u * 36);
  EXPECT_EQ(layout.bytes, 64u * 36 * 3 / 2);
  FrameInfo info;
  info.width = 64;
  info.height = 36;
  info.pitch = 64;
  FrameDescriptor good = MakeFrameDescriptor(1, 1, 2, info, layout.chroma_offset);
  EXPECT_TRUE(ValidateDescriptor(good, 4, layout.bytes).ok());
  FrameDescriptor bad = good;
  bad.slot = 4;
  EXPECT_FALSE(ValidateDescriptor(bad, 4, layout.bytes).ok()) << "slot outside the pool";
  bad = good;
  bad.slot = -1;
  EXPECT_FALSE(ValidateDescriptor(bad, 4, layout.bytes).ok());
  EXPECT_FALSE(ValidateDescriptor(good, 4, layout.bytes - 1).ok()) << "chroma runs past the slot";
  bad = good;
  bad.chroma_offset = 100;
  EXPECT_FALSE(ValidateDescriptor(bad, 4, layout.bytes).ok()) << "chroma overlaps the luma";
  bad = good;
  bad.pitch = 32;
  EXPECT_FALSE(ValidateDescriptor(bad, 4, layout.bytes).ok()) << "pitch shorter than a row";
  bad = good;
  bad.kind = static_cast<DescriptorKind>(77);
  EXPECT_FALSE(ValidateDescriptor(bad, 4, layout.bytes).ok());
}

TEST(IpcHostSlotPool, ConsumerReadsTheProducersBytesInPlace) {
  const std::string name = TestShmName("pool");
  const PackedFrameLayout layout = PackFrame(testing::kSyntheticWidth, testing::kSyntheticHeight, PixelFormat::kNV12);
  auto producer = HostSlotPool::Create(name, 3, layout.bytes);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  EXPECT_EQ((*producer)->slot_count(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reinterpret_cast<uintptr_t>((*producer)->slot(i)) % 4096, 0u);
  auto consumer = HostSlotPool::Open((*producer)->locator());
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  EXPECT_EQ((*consumer)->slot_count(), 3);
  EXPECT_EQ((*consumer)->slot_bytes(), layout.bytes);

  auto* base = reinterpret_cast<uint8_t*>((*producer)->slot(2));
  testing::FillSyntheticFrame(5, 9, base, base + layout.chroma_offset, layout.pitch);
  FrameInfo info;
  info.width = testing::kSyntheticWidth;
  info.height = testing::kSyntheticHeight;
  info.pitch = layout.pitch;
  info.frame_index = 9;
  auto view = (*consumer)->View(MakeFrameDescriptor(5, 1, 2, info, layout.chroma_offset));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_NE(view->luma, base) << "the consumer's own mapping";
  EXPECT_EQ(std::memcmp(view->luma, base, layout.bytes), 0) << "of the same bytes: nothing was copied";
  // A write after the descriptor is visible in place too (shared, not a snapshot).
  base[0] ^= 0xFF;
  EXPECT_EQ(view->luma[0], base[0]);
  FrameDescriptor bad = MakeFrameDescriptor(5, 1, 3, info, layout.chroma_offset);
  EXPECT_FALSE((*consumer)->View(bad).ok());
}

TEST(IpcFrameChannel, SlotsCirculateAndTheProducerReclaimsThemAfterConsumerDeath) {
  const PackedFrameLayout layout = PackFrame(64, 36, PixelFormat::kNV12);
  auto pool = HostSlotPool::Create(TestShmName("pool"), 4, layout.bytes);
  ASSERT_TRUE(pool.ok());
  const std::string name = TestShmName("chan");
  auto producer = FrameChannel::Create(name, (*pool)->locator(), 8);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  auto consumer = FrameChannel::Open(name);
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  EXPECT_EQ(consumer->pool().slot_count, 4);

  std::set<int> slots;
  for (int i = 0; i < 4; ++i) {
    auto slot = producer->TryAcquireSlot();
    ASSERT_TRUE(slot.has_value());
    slots.insert(*slot);
  }
  EXPECT_EQ(slots, (std::set<int>{0, 1, 2, 3}));
  EXPECT_FALSE(producer->TryAcquireSlot().has_value()) << "every slot is in flight";
  int slot = -1;
  EXPECT_EQ(producer->AcquireSlot(&slot, 20ms), RingWait::kTimedOut);

  FrameInfo info;
  info.width = 64;
  info.height = 36;
  info.pitch = 64;
  ASSERT_TRUE(producer->TrySend(MakeVideoBegin(1, 1)));
  ASSERT_TRUE(producer->TrySend(MakeFrameDescriptor(1, 1, 1, info, layout.chroma_offset)));
  auto begin = consumer->TryReceive();
  ASSERT_TRUE(begin.has_value());
  EXPECT_EQ(begin->kind, DescriptorKind::kVideoBegin);
  EXPECT_EQ(begin->sequence, 0u);
  auto frame = consumer->TryReceive();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->sequence, 1u);
  EXPECT_GT(frame->sent_ns, 0);
  ASSERT_TRUE(consumer->ReturnSlot(frame->slot).ok());
  ASSERT_EQ(producer->AcquireSlot(&slot, 1s), RingWait::kOk);
  EXPECT_EQ(slot, 1);

  // The consumer "dies" holding a descriptor it never read and slots it never returned.
  ASSERT_TRUE(producer->TrySend(MakeFrameDescriptor(1, 1, 1, info, layout.chroma_offset)));
  EXPECT_EQ(producer->free_slots(), 0u);
  producer->ReclaimAfterConsumerDeath();
  EXPECT_EQ(producer->free_slots(), 4u);
  EXPECT_EQ(consumer->descriptors_waiting(), 0u);
  // Every slot is free now, so one more return is a slot coming back twice; and a slot outside the pool
  // is refused.
  EXPECT_FALSE(consumer->ReturnSlot(0).ok());
  EXPECT_FALSE(consumer->ReturnSlot(7).ok());
  EXPECT_FALSE(consumer->ReturnSlot(-1).ok());
}

// ---------------------------------------------------------------------------------------------------
// Process supervisor

ProcessSpec Shell(const std::string& name, const std::string& script) {
  return ProcessSpec{name, {"/bin/sh", "-c", script}, {}};
}

// Polls until `done` says so (or 10 s pass); returns every event seen.
std::vector<ProcessEvent> PollUntil(ProcessSupervisor& supervisor,
                                    const std::function<bool(const std::vector<ProcessEvent>&)>& done) {
  std::vector<ProcessEvent> events;
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    for (ProcessEvent& e : supervisor.Poll()) events.push_back(std::move(e));
    if (done(events)) break;
    std::this_thread::sleep_for(5ms);
  }
  return events;
}

bool Has(const std::vector<ProcessEvent>& events, ProcessEvent::Kind kind, int count = 1) {
  return std::count_if(events.begin(), events.end(), [&](const ProcessEvent& e) { return e.kind == kind; }) >= count;
}

TEST(IpcProcessSupervisor, ReportsExitCodesSignalsAndPassesTheEnvironment) {
  std::atomic<int> notified{0};
  ProcessSupervisor supervisor(RestartPolicy{}, [&] { ++notified; });
  auto exit3 = supervisor.Start(Shell("exit3", "exit 3"), false);
  ASSERT_TRUE(exit3.ok()) << exit3.status().ToString();
  auto killed = supervisor.Start(Shell("killed", "kill -9 $$"), false);
  ASSERT_TRUE(killed.ok());
  ProcessSpec env = Shell("env", "test \"$VIDSCAN_TEST_VALUE\" = 'a b'");
  env.env.emplace_back("VIDSCAN_TEST_VALUE", "a b");
  auto with_env = supervisor.Start(env, false);
  ASSERT_TRUE(with_env.ok());
  auto events = PollUntil(supervisor, [](const auto& e) { return Has(e, ProcessEvent::Kind::kExited, 3); });
  std::map<int, ProcessEvent> exits;
  for (const ProcessEvent& e : events) {
    if (e.kind == ProcessEvent::Kind::kExited) exits[e.id] = e;
  }
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_EQ(exits[*exit3].exit_code, 3);
  EXPECT_EQ(exits[*exit3].signal, 0);
  EXPECT_NE(exits[*exit3].Describe().find("exited with code 3"), std::string::npos) << exits[*exit3].Describe();
  EXPECT_EQ(exits[*killed].signal, SIGKILL);
  EXPECT_NE(exits[*killed].Describe().find("signal 9"), std::string::npos);
  EXPECT_EQ(exits[*with_env].exit_code, 0) << "the added environment reached the child";
  EXPECT_FALSE(exits[*with_env].failed());
  EXPECT_GE(notified.load(), 1) << "the monitor told us about the deaths";
  EXPECT_EQ(supervisor.running_count(), 0);
}

TEST(IpcProcessSupervisor, RestartsAFailingProcessWithBackoffThenGivesUp) {
  RestartPolicy policy;
  policy.max_restarts = 2;
  policy.initial_backoff = 60ms;
  policy.max_backoff = 1s;
  ProcessSupervisor supervisor(policy);
  ASSERT_TRUE(supervisor.Start(Shell("flaky", "exit 1")).ok());
  ASSERT_TRUE(supervisor.Start(Shell("clean", "exit 0")).ok());
  std::vector<std::pair<ProcessEvent, Clock::time_point>> timeline;
  auto deadline = Clock::now() + 10s;
  bool gave_up = false;
  while (!gave_up && Clock::now() < deadline) {
    for (ProcessEvent& e : supervisor.Poll()) {
      gave_up |= e.kind == ProcessEvent::Kind::kGaveUp;
      timeline.emplace_back(e, Clock::now());
    }
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(gave_up);
  std::vector<std::pair<ProcessEvent, Clock::time_point>> flaky;
  for (auto& entry : timeline) {
    if (entry.first.name == "flaky") flaky.push_back(entry);
  }
  // started, exited(restarting), started(1), exited(restarting), started(2), exited, gave up
  ASSERT_EQ(flaky.size(), 7u);
  using K = ProcessEvent::Kind;
  const K expected[] = {K::kStarted, K::kExited, K::kStarted, K::kExited, K::kStarted, K::kExited, K::kGaveUp};
  for (size_t i = 0; i < flaky.size(); ++i) EXPECT_EQ(flaky[i].first.kind, expected[i]) << "event " << i;
  EXPECT_TRUE(flaky[1].first.restarting);
  EXPECT_TRUE(flaky[3].first.restarting);
  EXPECT_FALSE(flaky[5].first.restarting);
  EXPECT_EQ(flaky[4].first.restarts, 2);
  // Backoff doubles: >= 60 ms before the first restart, >= 120 ms before the second.
  EXPECT_GE(flaky[2].second - flaky[1].second, 55ms);
  EXPECT_GE(flaky[4].second - flaky[3].second, 115ms);
  // A clean exit is not a failure and is not restarted.
  int clean_starts = 0;
  for (auto& entry : timeline) clean_starts += entry.first.name == "clean" && entry.first.kind == K::kStarted;
  EXPECT_EQ(clean_starts, 1);
}

TEST(IpcProcessSupervisor, ExecFailureIsReportedByStart) {
  ProcessSupervisor supervisor;
  auto missing = supervisor.Start(ProcessSpec{"missing", {"/nonexistent/vidscan-worker"}, {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/vidscan-worker"), std::string::npos);
  EXPECT_FALSE(supervisor.Start(ProcessSpec{"relative", {"sh"}, {}}).ok()) << "argv[0] must be a path";
  EXPECT_EQ(supervisor.running_count(), 0);
}

TEST(IpcProcessSupervisor, StopAllTerminatesAndEscalatesToSigkill) {
  ProcessSupervisor supervisor;
  ASSERT_TRUE(supervisor.Start(Shell("polite", "exec sleep 60")).ok());
  // Ignored signals stay ignored across exec: this sleep ignores SIGTERM.
  ASSERT_TRUE(supervisor.Start(Shell("stubborn", "trap '' TERM; exec sleep 60")).ok());
  std::this_thread::sleep_for(100ms);  // let the shells exec
  EXPECT_EQ(supervisor.running_count(), 2);
  auto start = Clock::now();
  supervisor.StopAll(300ms);
  auto took = Clock::now() - start;
  EXPECT_EQ(supervisor.running_count(), 0);
  EXPECT_GE(took, 290ms) << "the stubborn one got its grace period";
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(supervisor.Poll().empty()) << "a requested stop is not a death to report or restart";
}

// Orphans of a killed supervisor are re-parented to us, so we can reap them and see how they died.
class Subreaper {
 public:
  Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

// Waits (as their subreaper) for processes that are not our children yet; returns how each ended.
std::map<pid_t, int> ReapOrphans(const std::vector<pid_t>& pids, std::chrono::seconds timeout) {
  std::map<pid_t, int> ended;
  auto deadline = Clock::now() + timeout;
  while (ended.size() < pids.size() && Clock::now() < deadline) {
    for (pid_t pid : pids) {
      if (ended.count(pid)) continue;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) ended[pid] = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
    std::this_thread::sleep_for(10ms);
  }
  return ended;
}

TEST(IpcProcessSupervisor, AKilledSupervisorTakesItsWorkersDown) {
  Subreaper subreaper;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t middle = fork();
  if (middle == 0) {
    close(pipe_fds[0]);
    ProcessSupervisor supervisor;
    auto id = supervisor.Start(ProcessSpec{"sleeper", {"/bin/sleep", "60"}, {}});
    pid_t worker = id.ok() ? supervisor.pid(*id) : 0;
    (void)!write(pipe_fds[1], &worker, sizeof(worker));
    for (;;) pause();
  }
  close(pipe_fds[1]);
  pid_t worker = 0;
  ASSERT_EQ(read(pipe_fds[0], &worker, sizeof(worker)), static_cast<ssize_t>(sizeof(worker)));
  close(pipe_fds[0]);
  ASSERT_GT(worker, 0);
  kill(middle, SIGKILL);
  EXPECT_EQ(WaitChild(middle), 128 + SIGKILL);
  auto ended = ReapOrphans({worker}, 10s);
  ASSERT_EQ(ended.count(worker), 1u) << "the worker outlived its supervisor";
  EXPECT_EQ(ended[worker], 128 + SIGKILL) << "PR_SET_PDEATHSIG";
}

// ---------------------------------------------------------------------------------------------------
// Whole jobs: real worker processes with the synthetic stages

std::string WorkerBinary() { return VIDSCAN_IPC_TEST_WORKER; }

struct JobRun {
  MultiProcessReport report;
  std::string out_dir;
  std::string prefix;  // the job's shm prefix
};

MultiProcessOptions SyntheticOptions(const testing::SyntheticConfig& config, int decode, int infer) {
  MultiProcessOptions options;
  options.tag = UniqueTag();
  options.decode_workers = decode;
  options.infer_workers = infer;
  options.worker_argv = {WorkerBinary()};
  options.worker_env = config.Environment();
  options.slots_per_decoder = 4;
  options.slot_bytes = PackFrame(testing::kSyntheticWidth, testing::kSyntheticHeight, PixelFormat::kNV12).bytes;
  options.batch_size = 4;
  options.max_batch_wait = 1ms;
  options.restart.initial_backoff = 20ms;
  options.restart.max_backoff = 200ms;
  options.timeout = 60s;
  return options;
}

std::vector<uint64_t> VideoIds(int count) {
  std::vector<uint64_t> ids;
  for (int i = 1; i <= count; ++i) ids.push_back(static_cast<uint64_t>(i));
  return ids;
}

// Runs a job; checks it left no shared memory behind.
JobRun RunJob(const std::vector<uint64_t>& videos, testing::SyntheticConfig config, int decode, int infer,
              const std::function<void(MultiProcessOptions&)>& adjust = {}) {
  JobRun run;
  run.out_dir = testing::TempDir("ipc_job");
  config.out_dir = run.out_dir;
  MultiProcessOptions options = SyntheticOptions(config, decode, infer);
  if (adjust) adjust(options);
  run.prefix = *ShmJobPrefix(getpid(), options.tag);
  auto report = RunMultiProcessJob(videos, options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (report.ok()) run.report = *report;
  EXPECT_TRUE(ListShm(run.prefix).empty()) << "shared memory left by the job: " << fmt::format("{}", fmt::join(ListShm(run.prefix), " "));
  return run;
}

// The video*.txt outputs of a run, by video id.
std::map<uint64_t, std::string> Outputs(const std::string& dir) {
  std::map<uint64_t, std::string> outputs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string file = entry.path().filename().string();
    if (file.rfind("video", 0) == 0 && entry.path().extension() == ".txt") {
      outputs[std::stoull(file.substr(5))] = ReadFile(entry.path().string());
    }
  }
  return outputs;
}

void ExpectAllDoneAndExact(const JobRun& run, const std::vector<uint64_t>& videos) {
  ASSERT_EQ(run.report.videos.size(), videos.size());
  int64_t frames = 0;
  for (const VideoOutcome& video : run.report.videos) {
    EXPECT_EQ(video.state, VideoState::kDone) << "video " << video.video_id << ": " << video.status.ToString();
    EXPECT_EQ(video.frames, testing::SyntheticFrameCount(video.video_id)) << "video " << video.video_id;
    EXPECT_EQ(video.report, testing::SyntheticReport(video.video_id, video.frames))
        << "the consumer's report reaches the supervisor whole";
    frames += testing::SyntheticFrameCount(video.video_id);
  }
  EXPECT_EQ(run.report.frames, frames);
  auto outputs = Outputs(run.out_dir);
  ASSERT_EQ(outputs.size(), videos.size());
  for (uint64_t id : videos) EXPECT_EQ(outputs[id], testing::ExpectedSyntheticOutput(id)) << "video " << id;
}

class IpcJobShape : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(IpcJobShape, CleanRunDeliversEveryFrameExactlyOnce) {
  auto [decode, infer] = GetParam();
  const auto videos = VideoIds(9);
  JobRun run = RunJob(videos, {}, decode, infer);
  ExpectAllDoneAndExact(run, videos);
  EXPECT_EQ(run.report.worker_deaths, 0);
  for (const VideoOutcome& video : run.report.videos) EXPECT_EQ(video.attempts, 1);
}

INSTANTIATE_TEST_SUITE_P(IpcWorkers, IpcJobShape, ::testing::Values(std::pair{1, 1}, std::pair{2, 1}, std::pair{3, 2}),
                         [](const auto& info) { return fmt::format("decode{}_infer{}", info.param.first, info.param.second); });

// Near the end of a job the last videos go to idle decoders only: queuing one behind a busy decoder's video
// while another decoder has none would leave the job's last seconds to a few decoders.
TEST(IpcJob, TheLastVideosGoToIdleDecoders) {
  const int decoders = 3;
  const auto videos = VideoIds(14);
  std::map<int, int> held;  // by decoder: videos assigned and not yet produced
  int assigned = 0, queued_near_end = 0, queued_early = 0;
  JobRun run = RunJob(videos, {}, decoders, 1, [&](MultiProcessOptions& o) {
    ASSERT_EQ(o.max_videos_per_decoder, 2);
    o.observer = [&](const JobEvent& event) {
      if (event.kind == JobEvent::Kind::kVideoAssigned) {
        const size_t pending_before = videos.size() - static_cast<size_t>(assigned++);
        if (held[event.worker] > 0) (pending_before <= 2 * decoders ? queued_near_end : queued_early) += 1;
        ++held[event.worker];
      } else if (event.kind == JobEvent::Kind::kVideoProduced) {
        --held[event.worker];
      }
    };
  });
  ExpectAllDoneAndExact(run, videos);
  EXPECT_EQ(assigned, static_cast<int>(videos.size())) << "no deaths, so one attempt each";
  EXPECT_GT(queued_early, 0) << "early on, the next video is queued behind the running one";
  EXPECT_EQ(queued_near_end, 0) << "the last two rounds go to idle decoders only";
}

TEST(IpcJob, AnInferWorkerBatchesFramesAcrossItsDecoders) {
  const auto videos = VideoIds(9);
  testing::SyntheticConfig config;
  config.consume_delay_us = 300;  // the decoders keep the consumer's rings full
  JobRun run = RunJob(videos, config, 3, 1, [](MultiProcessOptions& o) {
    o.batch_size = 6;
    o.max_batch_wait = 20ms;
  });
  ExpectAllDoneAndExact(run, videos);
  testing::SyntheticInferStats stats = testing::ReadInferStats(run.out_dir);
  EXPECT_EQ(stats.max_batch, 6u);
  EXPECT_GE(stats.max_decoders_in_batch, 2u) << "one batch held frames from several decoders' pools";
}

// Kills worker 0 of `role` with SIGKILL when the first video that went through it is committed: mid-run,
// as its decoder already holds the next video (two are assigned at once) and a consumer needs ~20 ms a
// video, so there are frames in flight to lose.
void KillMidRun(MultiProcessOptions& options, WorkerRole role, std::map<std::pair<WorkerRole, int>, pid_t>& pids,
                bool& killed) {
  options.observer = [&pids, &killed, role, infer_workers = options.infer_workers](const JobEvent& event) {
    if (event.kind == JobEvent::Kind::kWorkerStarted) pids[{event.role, event.worker}] = event.pid;
    const bool through_target = role == WorkerRole::kDecode ? event.worker == 0 : event.worker % infer_workers == 0;
    if (event.kind == JobEvent::Kind::kVideoFinished && through_target && !killed) {
      killed = true;
      kill(pids.at({role, 0}), SIGKILL);
    }
  };
}

void CheckKilledRun(WorkerRole role, int pipeline_depth = 1, int commit_delay_ms = 0) {
  const auto videos = VideoIds(12);
  testing::SyntheticConfig config;
  config.consume_delay_us = 1000;  // frames stay in flight long enough to be interrupted
  config.pipeline_depth = pipeline_depth;
  config.commit_delay_ms = commit_delay_ms;
  JobRun undisturbed = RunJob(videos, config, 3, 2);
  ExpectAllDoneAndExact(undisturbed, videos);

  std::map<std::pair<WorkerRole, int>, pid_t> pids;
  bool killed = false;
  JobRun disturbed = RunJob(videos, config, 3, 2, [&](MultiProcessOptions& o) { KillMidRun(o, role, pids, killed); });
  ASSERT_TRUE(killed);
  EXPECT_EQ(disturbed.report.worker_deaths, 1);
  EXPECT_EQ(disturbed.report.worker_restarts, 1);
  ASSERT_EQ(disturbed.report.deaths.size(), 1u);
  EXPECT_NE(disturbed.report.deaths[0].find("signal 9"), std::string::npos) << disturbed.report.deaths[0];
  int requeued = 0;
  for (const VideoOutcome& video : disturbed.report.videos) requeued += video.attempts > 1;
  EXPECT_GE(requeued, 1) << "videos in flight at the kill were re-queued from their start";
  ExpectAllDoneAndExact(disturbed, videos);
  EXPECT_EQ(Outputs(disturbed.out_dir), Outputs(undisturbed.out_dir)) << "byte-identical to the undisturbed run";
}

TEST(IpcJob, KilledConsumerIsRestartedAndOutputsMatchAnUndisturbedRun) { CheckKilledRun(WorkerRole::kInfer); }

TEST(IpcJob, KilledProducerIsRestartedAndOutputsMatchAnUndisturbedRun) { CheckKilledRun(WorkerRole::kDecode); }

// Commits in the background (VideoConsumer::CommitVideo): the consumer's worker was dropping a dead
// decoder's channel while commits of that decoder's videos were still running; it must wait for them
// before the supervisor re-runs anything.
TEST(IpcJob, KilledProducerWithCommitsInTheBackgroundOutputsMatchAnUndisturbedRun) {
  CheckKilledRun(WorkerRole::kDecode, 2, 40);
}
TEST(IpcJob, KilledConsumerWithCommitsInTheBackgroundOutputsMatchAnUndisturbedRun) {
  CheckKilledRun(WorkerRole::kInfer, 2, 40);
}

// While the consumer is the bottleneck, decoders get unequal shares of it (weights 1 to 2 over the channels),
// so decoders of equally long videos do not advance in lockstep and set up their next videos at the same
// moment. With equal shares the two decoders here would analyse about as many frames each.
TEST(IpcJob, DecodersGetUnequalSharesOfABusyConsumer) {
  const auto videos = VideoIds(24);
  testing::SyntheticConfig config;
  config.consume_delay_us = 300;  // the consumer is the bottleneck; the decoders always have frames ready
  std::map<uint64_t, int> decoder_of;
  JobRun run = RunJob(videos, config, 2, 1, [&](MultiProcessOptions& o) {
    o.slots_per_decoder = 16;  // enough that both decoders always have a batch's worth ready
    o.observer = [&](const JobEvent& event) {
      if (event.kind == JobEvent::Kind::kVideoAssigned) decoder_of[event.video_id] = event.worker;
    };
  });
  ExpectAllDoneAndExact(run, videos);
  std::map<int, int64_t> frames;
  for (const VideoOutcome& video : run.report.videos) frames[decoder_of[video.video_id]] += video.frames;
  ASSERT_EQ(frames.size(), 2u);
  const double ratio = static_cast<double>(std::max(frames[0], frames[1])) / static_cast<double>(std::min(frames[0], frames[1]));
  EXPECT_GT(ratio, 1.4) << "frames by decoder: " << frames[0] << ", " << frames[1];
}

// A consumer that says it has read a started batch (BatchesDoneReading: the GPU's preprocess kernel is done)
// gets the slots back then, not at FinishBatch: one decoder with 4 slots fills a second batch of 4 while
// the first is still started. Without it, the frames in started batches never exceed the 4 slots.
TEST(IpcJob, SlotsGoBackOnceTheConsumerHasReadThem) {
  const auto videos = VideoIds(4);
  for (bool read_at_start : {false, true}) {
    SCOPED_TRACE(read_at_start ? "read at start" : "read at finish");
    testing::SyntheticConfig config;
    config.pipeline_depth = 2;
    config.read_at_start = read_at_start;
    JobRun run = RunJob(videos, config, 1, 1, [](MultiProcessOptions& o) {
      o.slots_per_decoder = 4;
      o.batch_size = 4;
      o.max_batch_wait = 20ms;
    });
    ExpectAllDoneAndExact(run, videos);
    const size_t most = testing::ReadInferStats(run.out_dir).max_started_frames;
    if (read_at_start) {
      EXPECT_EQ(most, 8u) << "two full batches started at once from one decoder's 4 slots";
    } else {
      EXPECT_LE(most, 4u);
    }
  }
}

// A consumer that commits in the background is not waited for: the worker starts other videos' batches
// while a commit runs (with identical videos every decoder ends one at the same moment, and synchronous
// commits stalled the GPU for ~0.5 s each time on an H200).
TEST(IpcJob, TheConsumerGoesOnWithOtherVideosWhileACommitRuns) {
  const auto videos = VideoIds(9);
  testing::SyntheticConfig config;
  config.commit_delay_ms = 150;
  config.consume_delay_us = 300;
  config.pipeline_depth = 2;
  JobRun run = RunJob(videos, config, 3, 1);
  ExpectAllDoneAndExact(run, videos);
  EXPECT_EQ(run.report.worker_deaths, 0);
  EXPECT_GT(testing::ReadInferStats(run.out_dir).batches_during_commits, 0u)
      << "no batch started while a commit ran: the worker waited for the commits";
}

// One death strikes every video in flight; they must not then run one at a time (measured on an H200:
// 16 struck videos run alone cost ~50 s of a one-hour job). Only a second strike isolates a video.
TEST(IpcJob, VideosStruckByOneDeathStillRunSideBySide) {
  const auto videos = VideoIds(12);
  testing::SyntheticConfig config;
  config.consume_delay_us = 1000;
  std::map<std::pair<WorkerRole, int>, pid_t> pids;
  bool killed = false;
  // Each video's last attempt as [assigned, finished] in event order.
  std::map<uint64_t, std::pair<int, int>> last_attempt;
  int clock = 0;
  JobRun run = RunJob(videos, config, 3, 1, [&](MultiProcessOptions& o) {
    KillMidRun(o, WorkerRole::kInfer, pids, killed);
    auto kill_observer = o.observer;
    o.observer = [&, kill_observer](const JobEvent& event) {
      kill_observer(event);
      ++clock;
      if (event.kind == JobEvent::Kind::kVideoAssigned) last_attempt[event.video_id] = {clock, INT32_MAX};
      if (event.kind == JobEvent::Kind::kVideoFinished) last_attempt[event.video_id].second = clock;
    };
  });
  ASSERT_TRUE(killed);
  ExpectAllDoneAndExact(run, videos);
  std::vector<uint64_t> struck;
  for (const VideoOutcome& video : run.report.videos) {
    if (video.strikes > 0) struck.push_back(video.video_id);
  }
  ASSERT_GE(struck.size(), 2u) << "the kill must strike several videos in flight for this test to mean anything";
  // Isolated, the struck videos would run one after another.
  bool side_by_side = false;
  for (uint64_t a : struck) {
    for (uint64_t b : struck) {
      if (a != b && last_attempt[a].first < last_attempt[b].second && last_attempt[b].first < last_attempt[a].second) {
        side_by_side = true;
      }
    }
  }
  EXPECT_TRUE(side_by_side) << "the videos struck by one death ran one at a time";
}

// The GPU consumer keeps two batches in flight (StartBatch / FinishBatch). With four slots per decoder, a
// slot handed back before its batch finished would be overwritten by the next frame before the pipelined
// consumer reads it (a wrong checksum), and a video committed before its last batch finished fails.
TEST(IpcJob, APipelinedConsumerReadsEverySlotBeforeItGoesBackAndCommitsVideosAfterTheirFrames) {
  const auto videos = VideoIds(9);
  for (auto [decode, infer] : {std::pair{1, 1}, std::pair{3, 1}, std::pair{3, 2}}) {
    SCOPED_TRACE(fmt::format("decode={},infer={}", decode, infer));
    testing::SyntheticConfig config;
    config.pipeline_depth = 2;
    config.consume_delay_us = 100;
    JobRun run = RunJob(videos, config, decode, infer, [](MultiProcessOptions& o) { o.batch_size = 3; });
    ExpectAllDoneAndExact(run, videos);
    EXPECT_EQ(run.report.worker_deaths, 0);
  }
}

TEST(IpcJob, KilledPipelinedConsumerIsRestartedAndOutputsMatchAnUndisturbedRun) {
  CheckKilledRun(WorkerRole::kInfer, /*pipeline_depth=*/2);
}

TEST(IpcJob, KilledProducerOfAPipelinedConsumerIsRestartedAndOutputsMatch) {
  CheckKilledRun(WorkerRole::kDecode, /*pipeline_depth=*/2);
}

TEST(IpcJob, PoisonVideosFailAfterMaxAttemptsAndTheRestFinish) {
  const auto videos = VideoIds(8);
  testing::SyntheticConfig config;
  config.decode_poison = 3;  // aborts its decoder at frame 3, every time
  config.infer_poison = 5;   // aborts its infer worker at frame 3, every time
  JobRun run = RunJob(videos, config, 2, 1, [](MultiProcessOptions& o) { o.max_attempts = 3; });
  auto outputs = Outputs(run.out_dir);
  for (const VideoOutcome& video : run.report.videos) {
    if (video.video_id == 3 || video.video_id == 5) {
      EXPECT_EQ(video.state, VideoState::kFailed) << "video " << video.video_id;
      EXPECT_EQ(video.strikes, 3) << "video " << video.video_id;
      // One attempt more is possible: a struck video is isolated only at its second strike, so it may wait in
      // a decoder's queue behind another poison and be re-queued unblamed when that one kills the decoder.
      EXPECT_GE(video.attempts, 3) << "video " << video.video_id;
      EXPECT_LE(video.attempts, 5) << "video " << video.video_id;
      EXPECT_NE(video.status.message().find("died 3 times"), std::string::npos) << video.status.ToString();
      EXPECT_NE(video.status.message().find("signal 6"), std::string::npos) << video.status.ToString();
      EXPECT_EQ(outputs.count(video.video_id), 0u);
    } else {
      EXPECT_EQ(video.state, VideoState::kDone) << "video " << video.video_id << ": " << video.status.ToString();
      EXPECT_LT(video.strikes, 3);
      EXPECT_EQ(outputs[video.video_id], testing::ExpectedSyntheticOutput(video.video_id)) << "video " << video.video_id;
    }
  }
  // Every death strikes the poison video that caused it (it was in flight), and a video is struck at most
  // once per death: 3 to 6 deaths (fewer than 6 when one death struck both poisons), never more.
  EXPECT_GE(run.report.worker_deaths, 3);
  EXPECT_LE(run.report.worker_deaths, 6) << "poison videos are not retried for ever";
}

TEST(IpcJob, SlowConsumerBlocksTheProducerAndNothingIsDropped) {
  const std::vector<uint64_t> videos = {4, 6};  // 20 and 14 frames
  testing::SyntheticConfig config;
  config.consume_delay_us = 3000;
  JobRun run = RunJob(videos, config, 1, 1, [](MultiProcessOptions& o) {
    o.slots_per_decoder = 2;
    o.batch_size = 1;
  });
  ExpectAllDoneAndExact(run, videos);
  // With 2 slots and a consumer at 3 ms/frame the producer waits for nearly every frame.
  EXPECT_GE(run.report.producer_waits, 20);
  EXPECT_GT(run.report.producer_wait_seconds, 0.05);
  EXPECT_GE(run.report.wall_seconds, 34 * 0.003) << "paced by the consumer";
}

TEST(IpcJob, CancelStopsTheWorkersAndRemovesTheSharedMemory) {
  testing::SyntheticConfig config;
  config.out_dir = testing::TempDir("ipc_cancel");
  config.consume_delay_us = 2000;
  MultiProcessOptions options = SyntheticOptions(config, 2, 1);
  std::atomic<bool> cancel{false};
  std::vector<pid_t> workers;
  options.cancel = &cancel;
  options.observer = [&](const JobEvent& event) {
    if (event.kind == JobEvent::Kind::kWorkerStarted) workers.push_back(event.pid);
    if (event.kind == JobEvent::Kind::kVideoFinished) cancel = true;
  };
  const std::string prefix = *ShmJobPrefix(getpid(), options.tag);
  auto start = Clock::now();
  auto report = RunMultiProcessJob(VideoIds(30), options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("cancelled"), std::string::npos) << report.status().ToString();
  EXPECT_LT(Clock::now() - start, 20s);
  EXPECT_TRUE(ListShm(prefix).empty());
  ASSERT_EQ(workers.size(), 3u);
  for (pid_t pid : workers) EXPECT_NE(kill(pid, 0), 0) << "worker " << pid << " still exists (reaped: no zombie)";
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string pid_text = entry.path().filename().string();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(entry.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) children.push_back(std::stoi(pid_text));
  }
  return children;
}

TEST(IpcJob, AKilledSupervisorsWorkersDieAndTheNextRunRemovesItsSharedMemory) {
  Subreaper subreaper;
  const std::string out_dir = testing::TempDir("ipc_killed_supervisor");
  testing::SyntheticConfig config;
  config.out_dir = out_dir;
  config.consume_delay_us = 2000;  // a job of several seconds
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (auto& [key, value] : config.Environment()) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string binary = WorkerBinary();
  std::vector<std::string> args = {binary, "supervise", "40", "2", "1"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t supervisor = 0;
  ASSERT_EQ(posix_spawn(&supervisor, binary.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);

  // Mid-run: some videos committed, workers busy.
  auto deadline = Clock::now() + 30s;
  while (Outputs(out_dir).size() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_GE(Outputs(out_dir).size(), 2u);
  std::vector<pid_t> workers = ChildrenOf(supervisor);
  ASSERT_EQ(workers.size(), 3u);
  const std::string dead_prefix = *ShmJobPrefix(supervisor, "supervised");
  ASSERT_FALSE(ListShm(dead_prefix).empty());

  kill(supervisor, SIGKILL);
  EXPECT_EQ(WaitChild(supervisor), 128 + SIGKILL);
  auto ended = ReapOrphans(workers, 10s);
  ASSERT_EQ(ended.size(), workers.size()) << "workers outlived their supervisor";
  for (auto [pid, how] : ended) EXPECT_EQ(how, 128 + SIGKILL) << "worker " << pid;
  std::vector<std::string> left = ListShm(dead_prefix);
  std::set<std::string> left_set(left.begin(), left.end());
  EXPECT_TRUE(left_set.count(dead_prefix + "ctl")) << "a killed job cannot clean up after itself";
  EXPECT_GE(left.size(), 5u) << "the job region and two decoders' channels and pools";

  // The next run removes them.
  JobRun next = RunJob({1}, {}, 1, 1);
  ExpectAllDoneAndExact(next, {1});
  std::set<std::string> removed(next.report.stale_shm_removed.begin(), next.report.stale_shm_removed.end());
  for (const std::string& name : left) EXPECT_TRUE(removed.count(name)) << name;
  EXPECT_TRUE(ListShm(dead_prefix).empty());
}

}  // namespace
}  // namespace vidscan::ipc
