#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "sink/atomic_file.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AtomicFile, AppearsUnderItsNameOnlyOnCommit) {
  const std::string dir = testing::TempDir("atomic");
  const std::string final_path = dir + "/out.txt";
  auto file = AtomicFile::Create(final_path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->temp_path(), dir + "/.out.txt.partial");
  ASSERT_TRUE(file->Write("hello ").ok());
  ASSERT_TRUE(file->Write("world\n").ok());
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_TRUE(fs::exists(file->temp_path()));
  ASSERT_TRUE(file->Commit().ok());
  EXPECT_TRUE(file->committed());
  EXPECT_EQ(ReadAll(final_path), "hello world\n");
  EXPECT_FALSE(fs::exists(dir + "/.out.txt.partial"));
  EXPECT_FALSE(file->Write("more").ok());
  EXPECT_FALSE(file->Commit().ok());
}

TEST(AtomicFile, AbandonedFileLeavesNothingAndKeepsTheOldVersion) {
  const std::string dir = testing::TempDir("atomic");
  const std::string final_path = dir + "/out.txt";
  { std::ofstream(final_path) << "old\n"; }
  {
    auto file = AtomicFile::Create(final_path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->Write("new but never committed\n").ok());
    EXPECT_EQ(ReadAll(final_path), "old\n");
  }
  EXPECT_EQ(ReadAll(final_path), "old\n");
  EXPECT_FALSE(fs::exists(dir + "/.out.txt.partial"));

  // Commit replaces the old version in one step.
  auto file = AtomicFile::Create(final_path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Write("new\n").ok());
  EXPECT_EQ(ReadAll(final_path), "old\n");
  ASSERT_TRUE(file->Commit().ok());
  EXPECT_EQ(ReadAll(final_path), "new\n");
}

TEST(AtomicFile, LargeWritesArriveIntact) {
  const std::string dir = testing::TempDir("atomic");
  std::string expected;
  auto file = AtomicFile::Create(dir + "/big.bin");
  ASSERT_TRUE(file.ok());
  // Small writes that fill the buffer many times over, and one larger than the buffer.
  for (int i = 0; i < 20000; ++i) {
    std::string chunk = std::to_string(i) + ",";
    if (i == 7777) chunk += std::string(200000, 'x');
    expected += chunk;
    ASSERT_TRUE(file->Write(chunk).ok());
  }
  ASSERT_TRUE(file->Commit().ok());
  EXPECT_EQ(ReadAll(dir + "/big.bin"), expected);
}

TEST(AtomicFile, MissingDirectoryIsAnErrorNamingTheFile) {
  auto file = AtomicFile::Create("/nonexistent-vidscan-dir/out.txt");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kIoError);
  EXPECT_NE(file.status().message().find("/nonexistent-vidscan-dir/.out.txt.partial"), std::string::npos)
      << file.status().message();
}

// A child process writes without committing and is SIGKILLed mid-write: only the .partial file remains,
// and the cleanup helper removes it (and nothing else).
TEST(AtomicFile, KilledWriterLeavesOnlyAPartialFile) {
  const std::string dir = testing::TempDir("atomic-kill");
  const std::string final_path = dir + "/detections.jsonl";
  { std::ofstream(dir + "/keep.partial") << "not ours: no leading dot\n"; }
  { std::ofstream(dir + "/.hidden") << "not ours either\n"; }
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto file = AtomicFile::Create(final_path);
    if (!file.ok()) _exit(2);
    const std::string line(1000, 'a');
    for (int i = 0; i < 1000; ++i) {
      if (!file->Write(line + "\n").ok()) _exit(3);
    }
    if (write(ready[1], "r", 1) != 1) _exit(4);
    for (;;) {  // keeps writing until killed
      if (!file->Write(line + "\n").ok()) _exit(5);
    }
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the child failed before writing";
  close(ready[0]);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_TRUE(fs::exists(dir + "/.detections.jsonl.partial"));
  EXPECT_GE(fs::file_size(dir + "/.detections.jsonl.partial"), 900000u);

  auto removed = RemoveStalePartialFiles(dir);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(fs::exists(dir + "/.detections.jsonl.partial"));
  EXPECT_TRUE(fs::exists(dir + "/keep.partial"));
  EXPECT_TRUE(fs::exists(dir + "/.hidden"));
}

// Killed right after Commit() returned: the file is there, whole.
TEST(AtomicFile, KilledAfterCommitKeepsTheWholeFile) {
  const std::string dir = testing::TempDir("atomic-kill");
  const std::string final_path = dir + "/summary.json";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto file = AtomicFile::Create(final_path);
    if (!file.ok() || !file->Write("{\"complete\": true}\n").ok() || !file->Commit().ok()) _exit(2);
    if (write(ready[1], "r", 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_EQ(ReadAll(final_path), "{\"complete\": true}\n");
  EXPECT_FALSE(fs::exists(PartialPathFor(final_path)));
}

TEST(AtomicFile, PartialNames) {
  EXPECT_EQ(PartialPathFor("a/b/c.txt"), "a/b/.c.txt.partial");
  EXPECT_EQ(PartialPathFor("c.txt"), ".c.txt.partial");
  EXPECT_TRUE(IsPartialFileName(".c.txt.partial"));
  EXPECT_FALSE(IsPartialFileName("c.txt.partial"));
  EXPECT_FALSE(IsPartialFileName(".partial"));
  EXPECT_FALSE(IsPartialFileName(".c.txt"));
}

}  // namespace
}  // namespace vidscan
