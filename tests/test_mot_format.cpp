#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sink/mot_format.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

TEST(MotFormat, ParsesDetFilesWithCommasOrSpaces) {
  auto r = ParseMotText("1,-1,649.441,231.502,44.417,86.13,0.995474,-1,-1,-1\n"
                        "\n"
                        "2 7 10 20 30 40 0.5\r\n"
                        "3, 8, 1.5, 2.5, 3, 4, 1\n",
                        "det.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].frame, 1);
  EXPECT_EQ((*r)[0].id, -1);
  EXPECT_FLOAT_EQ((*r)[0].x, 649.441f);
  EXPECT_FLOAT_EQ((*r)[0].h, 86.13f);
  EXPECT_FLOAT_EQ((*r)[0].score, 0.995474f);
  EXPECT_EQ((*r)[1].id, 7);
  EXPECT_FLOAT_EQ((*r)[1].score, 0.5f);
  EXPECT_EQ((*r)[2].frame, 3);
  EXPECT_FLOAT_EQ((*r)[2].y, 2.5f);
}

TEST(MotFormat, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"1,-1,1,2,3,4,0.9\n1,-1,1,2,3,4\n", "det.txt:2: expected at least 7 fields"},
      {"1,-1,1,2,3,4,0.9\n\n2,-1,1,abc,3,4,0.9\n", "det.txt:3: field 4 (y) is not a finite number: 'abc'"},
      {"0,-1,1,2,3,4,0.9\n", "det.txt:1: frame must be an integer >= 1"},
      {"1.5,-1,1,2,3,4,0.9\n", "det.txt:1: frame must be an integer >= 1"},
      {"1,-1,1,2,-3,4,0.9\n", "det.txt:1: negative box size"},
      {"1,-1,1,,3,4,0.9\n", "det.txt:1: field 4 (y) is not a finite number: ''"},
      {"1,-1,1,2,3,4,nan\n", "det.txt:1: field 7 (score)"},
  };
  for (const auto& c : cases) {
    auto r = ParseMotText(c.text, "det.txt");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruptData);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
}

TEST(MotFormat, MissingFileIsNotFound) {
  auto r = ReadMotFile("/nonexistent/det.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/det.txt"), std::string::npos);
}

TEST(MotFormat, WrittenResultsReadBack) {
  EXPECT_EQ(FormatMotLine({12, 3, 1.f, 2.5f, 30.25f, 60.f, 0.87654f}), "12,3,1.00,2.50,30.25,60.00,0.8765,-1,-1,-1\n");
  const std::string path = testing::TempDir("mot") + "/res.txt";
  {
    auto w = MotWriter::Open(path);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->Write({1, 1, 10, 20, 30, 40, 0.9f}).ok());
    ASSERT_TRUE(w->Write({2, 1, 11, 21, 30, 40, 0.8f}).ok());
    ASSERT_TRUE(w->Close().ok());
  }
  auto r = ReadMotFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].frame, 2);
  EXPECT_EQ((*r)[1].id, 1);
  EXPECT_FLOAT_EQ((*r)[1].x, 11.f);
  EXPECT_FLOAT_EQ((*r)[1].score, 0.8f);
  auto bad = MotWriter::Open("/nonexistent-dir/res.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/res.txt"), std::string::npos);
}

}  // namespace
}  // namespace vidscan
