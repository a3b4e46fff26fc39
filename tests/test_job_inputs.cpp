#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "job/inputs.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {

void Touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "not really a video\n";
}

void WriteText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

Expected<std::vector<VideoInput>> Collect(std::vector<std::string> args, const InputOptions& options = {},
                                          const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  return CollectInputs(args, options, in);
}

std::vector<std::string> Keys(const std::vector<VideoInput>& inputs) {
  std::vector<std::string> keys;
  for (const auto& i : inputs) keys.push_back(i.key);
  return keys;
}

std::vector<std::string> Paths(const std::vector<VideoInput>& inputs) {
  std::vector<std::string> paths;
  for (const auto& i : inputs) paths.push_back(i.path);
  return paths;
}

TEST(JobInputs, DirectoriesAreSearchedRecursivelyInSortedOrder) {
  const fs::path root = testing::TempDir("inputs-dir");
  for (const char* f : {"a.mp4", "B.MKV", "notes.txt", "sub/c.ts", "sub/deeper/d.H264", "sub/g.avi", "sub/x.hevc",
                        ".hidden/e.mp4", "._f.mp4", "noext", "sub/h.mp4.txt"}) {
    Touch(root / f);
  }
  auto inputs = Collect({root.string()});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  const std::string r = root.string();
  EXPECT_EQ(Paths(*inputs), (std::vector<std::string>{r + "/B.MKV", r + "/a.mp4", r + "/sub/c.ts",
                                                       r + "/sub/deeper/d.H264", r + "/sub/g.avi", r + "/sub/x.hevc"}));
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"B.MKV", "a.mp4", "sub_c.ts", "sub_deeper_d.H264", "sub_g.avi",
                                                      "sub_x.hevc"}));
  for (const auto& i : *inputs) {
    EXPECT_TRUE(i.error.empty()) << i.error;
    EXPECT_EQ(i.absolute_path, fs::canonical(i.path).string());
    EXPECT_EQ(i.origin, r);
    EXPECT_EQ(i.sampling, "");
  }

  // Extensions are configurable (any case, with or without the dot).
  InputOptions only_text;
  only_text.extensions = {".TXT"};
  auto texts = Collect({root.string()}, only_text);
  ASSERT_TRUE(texts.ok());
  EXPECT_EQ(Keys(*texts), (std::vector<std::string>{"notes.txt", "sub_h.mp4.txt"}));
}

TEST(JobInputs, SymlinkLoopsEnd) {
  const fs::path root = testing::TempDir("inputs-loop");
  Touch(root / "a/v.mp4");
  fs::create_directory_symlink("..", root / "a/up");
  auto inputs = Collect({root.string()});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"a_v.mp4"}));
}

TEST(JobInputs, PlainManifestPathsAreRelativeToTheManifest) {
  const fs::path root = testing::TempDir("inputs-manifest");
  Touch(root / "lists/videos/one.mp4");
  Touch(root / "elsewhere/two.mkv");
  Touch(root / "lists/clip#3.avi");
  WriteText(root / "lists/job.txt",
            "# cameras of the north site\n"
            "\n"
            "videos/one.mp4\n"
            "   " + (root / "elsewhere/two.mkv").string() + "  \r\n"
            "clip#3.avi\n"
            "videos/missing.mp4\n");
  auto inputs = Collect({"@" + (root / "lists/job.txt").string()});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  ASSERT_EQ(inputs->size(), 4u);
  const std::string r = root.string();
  EXPECT_EQ(Paths(*inputs), (std::vector<std::string>{r + "/lists/videos/one.mp4", r + "/elsewhere/two.mkv",
                                                       r + "/lists/clip#3.avi", r + "/lists/videos/missing.mp4"}));
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"one.mp4", "two.mkv", "clip_3.avi", "missing.mp4"}));
  EXPECT_EQ((*inputs)[0].origin, (root / "lists/job.txt").string() + ":3");
  EXPECT_TRUE((*inputs)[2].error.empty());
  EXPECT_NE((*inputs)[3].error.find("No such file or directory"), std::string::npos) << (*inputs)[3].error;
  EXPECT_NE((*inputs)[3].error.find("missing.mp4"), std::string::npos);

  // The same manifest through the option.
  InputOptions options;
  options.manifests = {(root / "lists/job.txt").string()};
  auto again = Collect({}, options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Keys(*again), Keys(*inputs));
}

TEST(JobInputs, JsonLinesManifestCarriesPerVideoOptions) {
  const fs::path root = testing::TempDir("inputs-jsonl");
  Touch(root / "a.mp4");
  Touch(root / "b.mp4");
  Touch(root / "dir/c.mp4");
  WriteText(root / "job.jsonl",
            "{\"path\": \"a.mp4\", \"sample\": \"every:3\", \"key\": \"north gate/cam 1\"}\n"
            "# a comment between entries\n"
            "{\"path\": \"b.mp4\"}\n"
            "{\"path\": \"dir\", \"sample\": \"fps:2\"}\n");
  auto inputs = Collect({"@" + (root / "job.jsonl").string()});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  ASSERT_EQ(inputs->size(), 3u);
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"north_gate_cam_1", "b.mp4", "c.mp4"}));
  EXPECT_EQ((*inputs)[0].sampling, "every:3");
  EXPECT_EQ((*inputs)[1].sampling, "");
  EXPECT_EQ((*inputs)[2].sampling, "fps:2");  // applies to every video in the directory
  EXPECT_EQ((*inputs)[2].origin, (root / "job.jsonl").string() + ":4");

  // Malformed entries stop the job before it starts, naming the manifest and the line.
  struct Case {
    const char* line;
    const char* message;
  } cases[] = {
      {"{\"path\": \"a.mp4\", \"sample\": \"every:0\"}", "job2.jsonl:2: --sample 'every:0'"},
      {"{\"path\": \"a.mp4\", \"sampling\": \"all\"}", "job2.jsonl:2: unknown field \"sampling\""},
      {"{\"path\": \"a.mp4\"", "job2.jsonl:2: not a valid JSON object"},
      {"{\"sample\": \"all\"}", "job2.jsonl:2: no \"path\""},
      {"{\"path\": 3}", "job2.jsonl:2: \"path\" must be a string"},
      {"{\"path\": \"dir\", \"key\": \"k\"}", "\"key\" names one video"},
  };
  for (const Case& c : cases) {
    WriteText(root / "job2.jsonl", std::string("b.mp4\n") + c.line + "\n");
    auto bad = Collect({"@" + (root / "job2.jsonl").string()});
    ASSERT_FALSE(bad.ok()) << c.line;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find(c.message), std::string::npos) << bad.status().message();
  }
}

TEST(JobInputs, StdinListsPathsFromTheCurrentDirectory) {
  const fs::path root = testing::TempDir("inputs-stdin");
  Touch(root / "s1.mp4");
  Touch(root / "s2.mov");
  auto inputs = Collect({"-", "-"}, {}, (root / "s1.mp4").string() + "\n\n# x\n" + (root / "s2.mov").string() + "\n");
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"s1.mp4", "s2.mov"}));
  EXPECT_EQ((*inputs)[1].origin, "<stdin>:4");
}

TEST(JobInputs, MissingAndUnreadablePathsAreRecordedNotFatal) {
  const fs::path root = testing::TempDir("inputs-missing");
  Touch(root / "ok.mp4");
  Touch(root / "locked.mp4");
  ::chmod((root / "locked.mp4").c_str(), 0);
  auto inputs = Collect({(root / "ok.mp4").string(), (root / "gone.mp4").string(), (root / "locked.mp4").string()});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  ASSERT_EQ(inputs->size(), 3u);
  EXPECT_TRUE((*inputs)[0].error.empty());
  EXPECT_EQ((*inputs)[1].key, "gone.mp4");
  EXPECT_EQ((*inputs)[1].error, (root / "gone.mp4").string() + ": No such file or directory");
  if (geteuid() != 0) {  // root reads anything
    EXPECT_NE((*inputs)[2].error.find("cannot open: Permission denied"), std::string::npos) << (*inputs)[2].error;
  }
}

TEST(JobInputs, DuplicatesAreRemovedFirstOccurrenceWins) {
  const fs::path root = testing::TempDir("inputs-dup");
  Touch(root / "d/a.mp4");
  Touch(root / "d/b.mp4");
  fs::create_symlink(root / "d/a.mp4", root / "link.mp4");
  const std::string a = (root / "d/a.mp4").string();
  auto inputs = Collect({a, (root / "d/../d/./a.mp4").string(), (root / "link.mp4").string(), (root / "d").string(), a});
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  EXPECT_EQ(Paths(*inputs), (std::vector<std::string>{a, (root / "d/b.mp4").string()}));
  EXPECT_EQ(Keys(*inputs), (std::vector<std::string>{"a.mp4", "b.mp4"}));
}

TEST(JobInputs, CollidingKeysGetAHashStableAcrossRunsAndOrders) {
  const fs::path root = testing::TempDir("inputs-collide");
  Touch(root / "north/cam.mp4");
  Touch(root / "south/cam.mp4");
  Touch(root / "south/CAM.MP4");  // same key on a case-insensitive file system
  Touch(root / "other.mp4");
  const std::vector<std::string> files = {(root / "north/cam.mp4").string(), (root / "south/cam.mp4").string(),
                                          (root / "south/CAM.MP4").string(), (root / "other.mp4").string()};
  auto first = Collect(files);
  ASSERT_TRUE(first.ok());
  std::map<std::string, std::string> key_of;
  for (const auto& i : *first) key_of[i.absolute_path] = i.key;
  EXPECT_EQ(key_of[fs::canonical(files[3]).string()], "other.mp4");
  std::set<std::string> lower_keys;
  for (const auto& i : *first) {
    if (i.path == files[3]) continue;
    // "<name>-<8 hex digits>" for every member of the colliding group.
    EXPECT_EQ(i.key.size(), fs::path(i.path).filename().string().size() + 9) << i.key;
    EXPECT_EQ(i.key.substr(0, i.key.size() - 9), fs::path(i.path).filename().string());
    std::string lower = i.key;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    EXPECT_TRUE(lower_keys.insert(lower).second) << "duplicate key " << i.key;
  }

  // Same command again, and the arguments in another order: the same keys.
  for (const auto& order : {files, std::vector<std::string>{files[3], files[2], files[1], files[0]}}) {
    auto again = Collect(order);
    ASSERT_TRUE(again.ok());
    for (const auto& i : *again) EXPECT_EQ(i.key, key_of[i.absolute_path]) << i.path;
  }

  // Explicit keys win over derived ones; the second claim of an explicit key is an error on that video.
  WriteText(root / "keys.jsonl", "{\"path\": \"other.mp4\", \"key\": \"cam.mp4\"}\n"
                                 "{\"path\": \"north/cam.mp4\"}\n"
                                 "{\"path\": \"south/cam.mp4\", \"key\": \"cam.mp4\"}\n");
  auto keyed = Collect({"@" + (root / "keys.jsonl").string()});
  ASSERT_TRUE(keyed.ok()) << keyed.status().ToString();
  ASSERT_EQ(keyed->size(), 3u);
  EXPECT_EQ((*keyed)[0].key, "cam.mp4");
  EXPECT_TRUE((*keyed)[0].error.empty());
  EXPECT_EQ((*keyed)[1].key.substr(0, 8), "cam.mp4-");
  EXPECT_NE((*keyed)[2].key, "cam.mp4");
  EXPECT_NE((*keyed)[2].error.find("key 'cam.mp4' is already used by"), std::string::npos) << (*keyed)[2].error;
}

TEST(JobInputs, EmptyResultAndUnreadableManifestAreErrors) {
  const fs::path root = testing::TempDir("inputs-empty");
  Touch(root / "readme.txt");
  auto none = Collect({root.string()});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no videos to process"), std::string::npos) << none.status().message();
  EXPECT_FALSE(Collect({}).ok());

  auto manifest = Collect({"@" + (root / "nope.txt").string()});
  ASSERT_FALSE(manifest.ok());
  EXPECT_EQ(manifest.status().code(), StatusCode::kNotFound);
  EXPECT_NE(manifest.status().message().find("nope.txt"), std::string::npos);
  EXPECT_FALSE(Collect({"@" + root.string()}).ok());  // a directory is not a manifest

  // A manifest with only comments names nothing.
  WriteText(root / "empty.txt", "# nothing yet\n\n");
  EXPECT_FALSE(Collect({"@" + (root / "empty.txt").string()}).ok());
}

TEST(JobInputs, SanitizeKey) {
  EXPECT_EQ(SanitizeKey("cam 1/2024:05:01.mp4"), "cam_1_2024_05_01.mp4");
  EXPECT_EQ(SanitizeKey(".hidden.mp4"), "_hidden.mp4");
  EXPECT_EQ(SanitizeKey(".."), "_.");
  EXPECT_EQ(SanitizeKey(""), "_");
  EXPECT_EQ(SanitizeKey("caf\xc3\xa9.mp4"), "caf__.mp4");
  const std::string long_a = std::string(200, 'x') + "a.mp4";
  const std::string long_b = std::string(200, 'x') + "b.mp4";
  EXPECT_EQ(SanitizeKey(long_a).size(), 120u);
  EXPECT_NE(SanitizeKey(long_a), SanitizeKey(long_b));
  EXPECT_EQ(SanitizeKey(long_a), SanitizeKey(long_a));
}

}  // namespace
}  // namespace vidscan
