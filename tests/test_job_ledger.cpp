#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "job/ledger.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {

VideoInput Input(const std::string& key, std::string error = "") {
  VideoInput in;
  in.key = key;
  in.path = "videos/" + key;
  in.absolute_path = "/data/videos/" + key;
  in.error = std::move(error);
  return in;
}

std::vector<std::string> KeysOf(const LedgerPlan& plan) {
  std::vector<std::string> keys;
  for (const auto& p : plan.to_run) keys.push_back(p.input.key);
  return keys;
}

TEST(JobLedger, PlanRunAndResume) {
  const std::string path = testing::TempDir("ledger") + "/ledger.sqlite";
  const std::vector<VideoInput> inputs = {Input("a.mp4"), Input("b.mp4"), Input("c.mp4"),
                                          Input("gone.mp4", "/data/videos/gone.mp4: No such file or directory")};
  {
    auto ledger = JobLedger::Open(path, "model=m1 sample=all", false);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    auto plan = ledger->Plan(inputs);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(KeysOf(*plan), (std::vector<std::string>{"a.mp4", "b.mp4", "c.mp4"}));
    EXPECT_EQ(plan->input_errors, 1);
    EXPECT_EQ(plan->already_done, 0);
    for (const auto& p : plan->to_run) EXPECT_EQ(p.previous_state, VideoState::kQueued);
    auto counts = ledger->Counts();
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ(counts->queued, 3);
    EXPECT_EQ(counts->failed, 1);

    ASSERT_TRUE(ledger->MarkRunning("a.mp4").ok());
    ASSERT_TRUE(ledger->MarkDone("a.mp4", 250, 1.5).ok());
    ASSERT_TRUE(ledger->MarkRunning("b.mp4").ok());
    ASSERT_TRUE(ledger->MarkFailed("b.mp4", "b.mp4: corrupt data: no keyframe", 0.25).ok());

    auto a = ledger->Get("a.mp4");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->state, VideoState::kDone);
    EXPECT_EQ(a->path, "/data/videos/a.mp4");
    EXPECT_EQ(a->attempts, 1);
    EXPECT_EQ(a->frames, 250);
    EXPECT_EQ(a->wall_seconds, 1.5);
    EXPECT_EQ(a->started_at.size(), 24u) << a->started_at;  // 2024-05-01T12:00:00.123Z
    EXPECT_EQ(a->finished_at.back(), 'Z');
    EXPECT_TRUE(a->error.empty());

    auto failed = ledger->Entries(VideoState::kFailed);
    ASSERT_TRUE(failed.ok());
    ASSERT_EQ(failed->size(), 2u);
    EXPECT_EQ((*failed)[0].key, "b.mp4");
    EXPECT_EQ((*failed)[0].error, "b.mp4: corrupt data: no keyframe");
    EXPECT_EQ((*failed)[1].key, "gone.mp4");
    EXPECT_EQ((*failed)[1].attempts, 0);
  }

  // Rerun: a is skipped, b retried, c still to do; gone.mp4 has appeared and runs too.
  auto ledger = JobLedger::Open(path, "model=m1 sample=all", false);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  std::vector<VideoInput> rerun = inputs;
  rerun[3].error.clear();
  auto plan = ledger->Plan(rerun);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(KeysOf(*plan), (std::vector<std::string>{"b.mp4", "c.mp4", "gone.mp4"}));
  EXPECT_EQ(plan->already_done, 1);
  EXPECT_EQ(plan->retried, 2);
  EXPECT_EQ(plan->to_run[0].previous_state, VideoState::kFailed);
  EXPECT_EQ(plan->to_run[0].previous_attempts, 1);
  EXPECT_EQ(plan->to_run[0].previous_error, "b.mp4: corrupt data: no keyframe");
  EXPECT_EQ(plan->to_run[1].previous_state, VideoState::kQueued);
  auto counts = ledger->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->done, 1);
  EXPECT_EQ(counts->queued, 3);
  EXPECT_EQ(counts->total(), 4);

  ASSERT_TRUE(ledger->MarkRunning("b.mp4").ok());
  auto b = ledger->Get("b.mp4");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->attempts, 2);
  EXPECT_TRUE(b->error.empty());
}

TEST(JobLedger, TransitionsAreChecked) {
  const std::string path = testing::TempDir("ledger") + "/ledger.sqlite";
  auto ledger = JobLedger::Open(path, "f", false);
  ASSERT_TRUE(ledger.ok());
  std::vector<VideoInput> inputs = {Input("a.mp4")};
  ASSERT_TRUE(ledger->Plan(inputs).ok());
  EXPECT_EQ(ledger->MarkRunning("nope.mp4").code(), StatusCode::kNotFound);
  Status early = ledger->MarkDone("a.mp4", 1, 1);
  EXPECT_FALSE(early.ok());
  EXPECT_NE(early.message().find("video 'a.mp4' is queued"), std::string::npos) << early.message();
  ASSERT_TRUE(ledger->MarkRunning("a.mp4").ok());
  ASSERT_TRUE(ledger->MarkDone("a.mp4", 1, 1).ok());
  EXPECT_FALSE(ledger->MarkRunning("a.mp4").ok());
  EXPECT_FALSE(ledger->MarkFailed("a.mp4", "late").ok());
  EXPECT_FALSE(ledger->MarkDone("a.mp4", 1, 1).ok());
  EXPECT_EQ(ledger->Get("a.mp4")->state, VideoState::kDone);
  EXPECT_EQ(ledger->Get("nope.mp4").status().code(), StatusCode::kNotFound);
}

TEST(JobLedger, OtherConfigurationNeedsForce) {
  const std::string path = testing::TempDir("ledger") + "/ledger.sqlite";
  std::vector<VideoInput> inputs = {Input("a.mp4"), Input("b.mp4")};
  {
    auto ledger = JobLedger::Open(path, "model=m1", false);
    ASSERT_TRUE(ledger.ok());
    ASSERT_TRUE(ledger->Plan(inputs).ok());
    ASSERT_TRUE(ledger->MarkRunning("a.mp4").ok());
    ASSERT_TRUE(ledger->MarkDone("a.mp4", 10, 0.1).ok());
  }
  auto other = JobLedger::Open(path, "model=m2", false);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("--force"), std::string::npos) << other.status().message();
  EXPECT_NE(other.status().message().find("model=m1"), std::string::npos);

  // The refused open changed nothing.
  {
    auto same = JobLedger::Open(path, "model=m1", false);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->Get("a.mp4")->state, VideoState::kDone);
  }

  auto forced = JobLedger::Open(path, "model=m2", true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->Counts()->total(), 0);
  auto plan = forced->Plan(inputs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(KeysOf(*plan), (std::vector<std::string>{"a.mp4", "b.mp4"}));
  EXPECT_EQ(plan->already_done, 0);
  forced = JobLedger::Open(path, "model=m2", false);  // the new fingerprint is the ledger's now
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->config_fingerprint(), "model=m2");
}

TEST(JobLedger, KeyNamingAnotherVideoIsAnError) {
  const std::string path = testing::TempDir("ledger") + "/ledger.sqlite";
  auto ledger = JobLedger::Open(path, "f", false);
  ASSERT_TRUE(ledger.ok());
  std::vector<VideoInput> inputs = {Input("a.mp4")};
  ASSERT_TRUE(ledger->Plan(inputs).ok());
  inputs[0].absolute_path = "/elsewhere/a.mp4";
  auto plan = ledger->Plan(inputs);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("key 'a.mp4' belongs to /data/videos/a.mp4"), std::string::npos)
      << plan.status().message();
  std::vector<VideoInput> twice = {Input("x.mp4"), Input("x.mp4")};
  EXPECT_FALSE(ledger->Plan(twice).ok());
}

TEST(JobLedger, NotADatabase) {
  const std::string path = testing::TempDir("ledger") + "/ledger.sqlite";
  std::ofstream(path) << std::string(4096, 'x');
  auto ledger = JobLedger::Open(path, "f", false);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), StatusCode::kCorruptData);
  EXPECT_NE(ledger.status().message().find(path), std::string::npos);
  EXPECT_FALSE(JobLedger::Open("/nonexistent-vidscan-dir/ledger.sqlite", "f", false).ok());
}

// A process killed (SIGKILL) right after MarkDone returned, with another video running: the rerun finds
// the first done and restarts the second.
TEST(JobLedger, SurvivesAKilledRun) {
  const std::string path = testing::TempDir("ledger-kill") + "/ledger.sqlite";
  const std::vector<VideoInput> inputs = {Input("a.mp4"), Input("b.mp4"), Input("c.mp4")};
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto ledger = JobLedger::Open(path, "f", false);
    if (!ledger.ok() || !ledger->Plan(inputs).ok()) _exit(2);
    if (!ledger->MarkRunning("a.mp4").ok() || !ledger->MarkDone("a.mp4", 42, 2.0).ok()) _exit(3);
    if (!ledger->MarkRunning("b.mp4").ok()) _exit(4);
    if (write(ready[1], "r", 1) != 1) _exit(5);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the child failed";
  close(ready[0]);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  auto ledger = JobLedger::Open(path, "f", false);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  EXPECT_EQ(ledger->Get("a.mp4")->state, VideoState::kDone);
  EXPECT_EQ(ledger->Get("a.mp4")->frames, 42);
  EXPECT_EQ(ledger->Get("b.mp4")->state, VideoState::kRunning);
  auto plan = ledger->Plan(inputs);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(KeysOf(*plan), (std::vector<std::string>{"b.mp4", "c.mp4"}));
  EXPECT_EQ(plan->to_run[0].previous_state, VideoState::kRunning);
  EXPECT_EQ(plan->to_run[0].previous_attempts, 1);
  EXPECT_EQ(plan->interrupted, 1);
  EXPECT_EQ(plan->already_done, 1);
  EXPECT_EQ(ledger->Get("b.mp4")->state, VideoState::kQueued);
}

// Threads sharing one ledger, and threads with a connection each (as separate processes would have),
// marking videos done at the same time: nothing is lost.
TEST(JobLedger, ConcurrentStateChanges) {
  const std::string path = testing::TempDir("ledger-threads") + "/ledger.sqlite";
  constexpr int kThreads = 6;
  constexpr int kPerThread = 40;
  std::vector<VideoInput> inputs;
  for (int i = 0; i < kThreads * kPerThread; ++i) inputs.push_back(Input("v" + std::to_string(i) + ".mp4"));
  auto shared = JobLedger::Open(path, "f", false);
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(shared->Plan(inputs).ok());

  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::optional<JobLedger> own;
      if (t % 2) {  // odd threads: their own connection
        auto opened = JobLedger::Open(path, "f", false);
        if (!opened.ok()) {
          errors[t] = opened.status().ToString();
          return;
        }
        own.emplace(std::move(opened).value());
      }
      JobLedger& ledger = own ? *own : *shared;
      for (int i = t; i < kThreads * kPerThread; i += kThreads) {
        const std::string& key = inputs[i].key;
        Status s = ledger.MarkRunning(key);
        if (s.ok()) s = i % 5 == 0 ? ledger.MarkFailed(key, "boom " + key) : ledger.MarkDone(key, i, 0.01 * i);
        if (!s.ok()) {
          errors[t] = s.ToString();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
  auto counts = shared->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->failed, kThreads * kPerThread / 5);
  EXPECT_EQ(counts->done, kThreads * kPerThread - kThreads * kPerThread / 5);
  EXPECT_EQ(counts->running + counts->queued, 0);
  EXPECT_EQ(shared->Get("v7.mp4")->frames, 7);
  EXPECT_EQ(shared->Get("v10.mp4")->error, "boom v10.mp4");
}

}  // namespace
}  // namespace vidscan
