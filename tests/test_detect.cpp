// Detector heads, CPU NMS and model descriptions. Every expected box below is worked out by hand in the
// comment beside it, from the head's formula and the letterbox mapping network = source * scale + offset.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <climits>
#include <fstream>
#include <random>
#include <vector>

#include "detect/box_iou.h"
#include "detect/detection.h"
#include "detect/heads.h"
#include "detect/model_description.h"
#include "detect/nms.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

Candidate Box(float x1, float y1, float x2, float y2, float score, int class_id, int index) {
  return Candidate{x1, y1, x2, y2, score, class_id, index};
}

std::vector<int> Indices(const std::vector<Candidate>& kept) {
  std::vector<int> out;
  for (const Candidate& c : kept) out.push_back(c.index);
  return out;
}

// ---------------------------------------------------------------------------------------------- CPU NMS

TEST(NmsCpu, KeepsTheBetterOfTwoOverlappingBoxes) {
  // IoU of [0,0,10,10] and [1,0,11,10] = 90 / 110 = 0.82.
  std::vector<Candidate> c = {Box(0, 0, 10, 10, 0.6f, 0, 0), Box(1, 0, 11, 10, 0.9f, 0, 1)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, true})), (std::vector<int>{1}));
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.85f, 100, 100, true})), (std::vector<int>{1, 0}));
}

TEST(NmsCpu, ClassAwareUnlessToldOtherwise) {
  std::vector<Candidate> c = {Box(0, 0, 10, 10, 0.6f, 0, 0), Box(0, 0, 10, 10, 0.9f, 1, 1)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, true})), (std::vector<int>{1, 0}));
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, false})), (std::vector<int>{1}));
}

TEST(NmsCpu, ASuppressedBoxSuppressesNothing) {
  // A overlaps B (IoU 8/12 = 0.67), B overlaps C (IoU 0.67), A and C overlap by 6/14 = 0.43 < 0.5.
  std::vector<Candidate> c = {Box(0, 0, 10, 1, 0.9f, 0, 0), Box(2, 0, 12, 1, 0.8f, 0, 1), Box(4, 0, 14, 1, 0.7f, 0, 2)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, true})), (std::vector<int>{0, 2}));
}

TEST(NmsCpu, EqualScoresGoToTheLowerIndex) {
  std::vector<Candidate> c = {Box(0, 0, 10, 10, 0.5f, 0, 7), Box(0, 0, 10, 10, 0.5f, 0, 3), Box(0, 0, 10, 10, 0.5f, 0, 5)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, true})), (std::vector<int>{3}));
}

TEST(NmsCpu, IouEqualToTheThresholdIsKept) {
  // [0,0,2,1] and [0,0,1,1]: intersection 1, union 2, IoU exactly 0.5: suppression needs more.
  std::vector<Candidate> c = {Box(0, 0, 2, 1, 0.9f, 0, 0), Box(0, 0, 1, 1, 0.8f, 0, 1)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 100, true})), (std::vector<int>{0, 1}));
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.49f, 100, 100, true})), (std::vector<int>{0}));
}

TEST(NmsCpu, TopKAndMaxDetectionsCap) {
  std::vector<Candidate> c = {Box(0, 0, 1, 1, 0.1f, 0, 0), Box(5, 0, 6, 1, 0.3f, 0, 1), Box(10, 0, 11, 1, 0.2f, 0, 2)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 2, 100, true})), (std::vector<int>{1, 2}));
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 100, 1, true})), (std::vector<int>{1}));
  EXPECT_TRUE(NmsCpu({}, NmsParams{}).empty());
}

TEST(NmsCpu, TopKAppliesBeforeSuppression) {
  // The best box suppresses the second; with top_k 2 the third never enters, so only one comes out.
  std::vector<Candidate> c = {Box(0, 0, 10, 10, 0.9f, 0, 0), Box(0, 0, 10, 10, 0.8f, 0, 1), Box(20, 0, 30, 10, 0.7f, 0, 2)};
  EXPECT_EQ(Indices(NmsCpu(c, NmsParams{0.5f, 2, 100, true})), (std::vector<int>{0}));
}

TEST(NmsSortKey, OrdersExactlyLikeCandidateBefore) {
  std::mt19937_64 rng(11);
  std::vector<Candidate> c;
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-38f, -1e-38f, 0.5f, 3e38f, -3e38f};
  for (int i = 0; i < 4000; ++i) {
    Candidate k;
    const uint64_t r = rng();
    k.score = r % 3 == 0 ? specials[r % 9] : r % 3 == 1 ? static_cast<float>(r % 16) / 16.0f
                                                        : std::uniform_real_distribution<float>(-2, 2)(rng);
    k.index = static_cast<int32_t>(rng() % 20000) - 10000;
    if (i % 7 == 0) k.index = i % 2 ? INT32_MAX - i : INT32_MIN + i;
    c.push_back(k);
  }
  // Every pair: the key order must agree with the comparator (ties in both only for equal score and index).
  for (size_t i = 0; i < c.size(); i += 3) {
    for (size_t j = 0; j < c.size(); j += 5) {
      const uint64_t ki = NmsSortKey(c[i].score, c[i].index), kj = NmsSortKey(c[j].score, c[j].index);
      ASSERT_EQ(ki < kj, CandidateBefore(c[i], c[j])) << i << " " << j;
      ASSERT_EQ(ki == kj, c[i].score == c[j].score && c[i].index == c[j].index) << i << " " << j;
    }
  }
}

// ---------------------------------------------------------------------------------------------- heads

ModelDescription Describe(const std::string& json) {
  Expected<ModelDescription> d = ParseModelDescription(json, "test.json");
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? d.value() : ModelDescription{};
}

void ExpectBox(const Detection& d, int class_id, float score, float x1, float y1, float x2, float y2) {
  EXPECT_EQ(d.class_id, class_id);
  EXPECT_FLOAT_EQ(d.score, score);
  EXPECT_NEAR(d.x1, x1, 1e-3f);
  EXPECT_NEAR(d.y1, y1, 1e-3f);
  EXPECT_NEAR(d.x2, x2, 1e-3f);
  EXPECT_NEAR(d.y2, y2, 1e-3f);
}

TEST(YoloxHead, DecodesGridCellsThroughTheLetterbox) {
  const ModelDescription model = Describe(
      R"({"family": "yolox", "input": {"width": 64, "height": 64}, "class_names": ["a", "b"], "score_threshold": 0.3})");
  // 64x64 input: 8x8 + 4x4 + 2x2 = 84 anchors of 5 + 2 values; frame 1 of 2 carries the boxes.
  ASSERT_EQ(YoloxAnchorCount(64, 64), 84);
  std::vector<float> out(2 * 84 * 7, 0.0f);
  auto set = [&](int anchor, std::vector<float> v) { std::copy(v.begin(), v.end(), out.begin() + (84 + anchor) * 7); };
  // Stride 8, cell (x 3, y 2) = anchor 19: cx (0.5+3)*8 = 28, cy (0.25+2)*8 = 18, w e^ln2*8 = 16, h e^0*8 = 8:
  // [20, 14, 36, 22]; score 0.9 * 0.8 = 0.72, class 1.
  set(19, {0.5f, 0.25f, std::log(2.0f), 0.0f, 0.9f, 0.2f, 0.8f});
  // Stride 16, cell (1, 0) = anchor 65: score 0.5 * 0.5 = 0.25 < 0.3, dropped.
  set(65, {0.0f, 0.0f, 0.0f, 0.0f, 0.5f, 0.5f, 0.1f});
  // Stride 32, cell (1, 0) = anchor 81: cx 48, cy 16, w 64, h 32: [16, 0, 80, 32]; score 0.6, class 0.
  set(81, {0.5f, 0.5f, std::log(2.0f), 0.0f, 1.0f, 0.6f, 0.3f});
  // Stride 32, cell (1, 1) = anchor 83: [32, 32, 64, 64], entirely in the padding below the picture: dropped.
  set(83, {0.5f, 0.5f, 0.0f, 0.0f, 1.0f, 0.9f, 0.1f});
  // Source 128x64 letterboxed top-left into 64x64: scale 0.5, offset 0, picture in rows 0..32.
  FrameGeometry g;
  g.transform = LetterboxTransform{0.5f, 0.5f, 0.0f, 0.0f, 0, 0, 64, 32};
  g.source_width = 128;
  g.source_height = 64;
  const HeadTensor tensor{out.data(), {2, 84, 7}};
  const FrameGeometry frames[2] = {g, g};
  Expected<std::vector<FrameDetections>> dets = DetectCpu(model, std::span(&tensor, 1), frames);
  ASSERT_TRUE(dets.ok()) << dets.status().ToString();
  ASSERT_EQ(dets->size(), 2u);
  EXPECT_TRUE((*dets)[0].empty());
  ASSERT_EQ((*dets)[1].size(), 2u);
  // Source boxes: network / 0.5, clipped to 128x64: [40, 28, 72, 44] and [32, 0, 160 -> 128, 64]. Different
  // classes, so the overlap suppresses nothing.
  ExpectBox((*dets)[1][0], 1, 0.72f, 40, 28, 72, 44);
  ExpectBox((*dets)[1][1], 0, 0.6f, 32, 0, 128, 64);
  EXPECT_EQ((*dets)[1][0].frame, 1);
}

// The real model on the real frame: tools/yolox_reference.py runs ONNX Runtime with its own preprocessing
// and post-processing and also saves the raw output; vidscan's YOLOX head, with the letterbox mapping the
// preprocess stage computes for a 1280x720 frame, must find the same boxes in that output. Tolerance: the
// scores are the same float products (exact up to 1e-6 for the JSON's rounding to 5 decimals); the boxes go
// through float32 here and float64 division there (0.01 px, the JSON's 2 decimals).
TEST(YoloxHead, RealFrameMatchesTheOnnxRuntimeReference) {
  VS_REQUIRE_DATA(video, testing::kRealVideo);
  VS_REQUIRE_DATA(onnx, "models/yolox_nano_coco_416.onnx");
  VS_REQUIRE_TOOL("ffmpeg");
  VS_REQUIRE_ORT_PYTHON();
  const std::string python = testing::EvalPython();
  const std::string dir = testing::TempDir("detect_yolox_ref");
  const std::string cmd = python + " " + testing::SourceDir() + "/tools/yolox_reference.py --video '" + video +
                          "' --model '" + onnx + "' --out " + dir + "/ref.json --raw-output " + dir + "/out.f32 >/dev/null";
  ASSERT_EQ(testing::RunCommand(cmd), 0) << cmd;

  const int64_t anchors = YoloxAnchorCount(416, 416);
  std::vector<float> output(static_cast<size_t>(anchors) * 85);
  std::ifstream raw(dir + "/out.f32", std::ios::binary);
  ASSERT_TRUE(raw.read(reinterpret_cast<char*>(output.data()), output.size() * sizeof(float)));
  nlohmann::json ref = nlohmann::json::parse(std::ifstream(dir + "/ref.json"));

  const ModelDescription model = Describe(R"({"family": "yolox", "input": {"width": 416, "height": 416}})");
  FrameInfo frame;
  frame.width = 1280;
  frame.height = 720;
  frame.pitch = 1280;
  Expected<LetterboxTransform> transform = ComputeLetterboxTransform(model.input, frame, Roi{});
  ASSERT_TRUE(transform.ok()) << transform.status().ToString();
  const FrameGeometry g{*transform, 1280, 720};
  const HeadTensor tensor{output.data(), {1, anchors, 85}};
  Expected<std::vector<FrameDetections>> dets = DetectCpu(model, std::span(&tensor, 1), std::span(&g, 1));
  ASSERT_TRUE(dets.ok()) << dets.status().ToString();
  const FrameDetections& mine = (*dets)[0];
  const nlohmann::json& theirs = ref["detections"];
  ASSERT_EQ(mine.size(), theirs.size());
  int people = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    SCOPED_TRACE("detection " + std::to_string(i));
    EXPECT_EQ(mine[i].class_id, theirs[i]["class_id"].get<int>());
    EXPECT_NEAR(mine[i].score, theirs[i]["score"].get<double>(), 1e-5);
    const float box[4] = {mine[i].x1, mine[i].y1, mine[i].x2, mine[i].y2};
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(box[k], theirs[i]["box"][k].get<double>(), 0.011);
    people += mine[i].class_id == 0;
  }
  // The data README: about 25 people in this frame at score >= 0.3, NMS IoU 0.45.
  EXPECT_EQ(people, 25);
}

TEST(YoloxHead, RejectsAShapeThatDoesNotMatchTheDescription) {
  const ModelDescription model = Describe(R"({"family": "yolox", "input": {"width": 64, "height": 64}})");
  std::vector<float> out(84 * 7, 0.0f);
  const HeadTensor tensor{out.data(), {1, 84, 7}};  // 2 classes, the description has COCO's 80
  FrameGeometry g{LetterboxTransform{}, 64, 64};
  Expected<std::vector<Candidate>> c = DecodeHeadCpu(model, std::span(&tensor, 1), 0, g);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("expected [N, 84, 85]"), std::string::npos) << c.status().message();
}

TEST(YoloV8Head, DecodesCentredLetterboxAndSuppresses) {
  const ModelDescription model = Describe(
      R"({"family": "yolov8", "input": {"width": 64, "height": 64}, "class_names": ["a", "b"]})");
  // [1, 4 + 2, 3]: planes cx, cy, w, h, score a, score b; anchors across.
  std::vector<float> out = {
      10, 32, 33,    // cx
      10, 32, 32,    // cy
      4,  16, 16,    // w
      4,  32, 32,    // h
      0.2f, 0.1f, 0.1f,  // class a
      0.1f, 0.9f, 0.8f,  // class b
  };
  // Anchor 0: best score 0.2 < 0.25, dropped. Anchor 1: [24, 16, 40, 48], class b, 0.9. Anchor 2: [25, 16, 41, 48],
  // IoU with anchor 1 = 15*32 / (17*32) = 0.88 > 0.7: suppressed.
  // Source 64x128 (portrait) letterboxed centred into 64x64: scale 0.5, content 32 wide at x 16..48.
  FrameGeometry g;
  g.transform = LetterboxTransform{0.5f, 0.5f, 16.0f, 0.0f, 16, 0, 32, 64};
  g.source_width = 64;
  g.source_height = 128;
  const HeadTensor tensor{out.data(), {1, 6, 3}};
  Expected<std::vector<FrameDetections>> dets = DetectCpu(model, std::span(&tensor, 1), std::span(&g, 1));
  ASSERT_TRUE(dets.ok()) << dets.status().ToString();
  ASSERT_EQ((*dets)[0].size(), 1u);
  // x: (24 - 16) / 0.5 = 16, (40 - 16) / 0.5 = 48; y: 16 / 0.5 = 32, 48 / 0.5 = 96.
  ExpectBox((*dets)[0][0], 1, 0.9f, 16, 32, 48, 96);
}

TEST(DetectNetV2Head, DecodesCoverageAndBboxGridsWithPerClassThresholds) {
  const ModelDescription model = Describe(R"({"family": "detectnet_v2", "input": {"width": 64, "height": 32},
      "class_names": ["person", "bag"], "score_threshold": [0.5, 0.9]})");
  // Stride 16: grid 4 wide, 2 high, 8 cells. Coverage [1, 2, 2, 4], bbox [1, 8, 2, 4].
  const int cells = 8;
  std::vector<float> cov(2 * cells, 0.0f), bbox(8 * cells, 0.0f);
  // Person at cell (row 1, col 2) = 6: centre gc = ((2*16 + 0.5) / 35, (1*16 + 0.5) / 35) = (32.5, 16.5) / 35;
  // o = (10, 6, 12, 4) / 35 -> x1 = 32.5 - 10 = 22.5, y1 = 16.5 - 6 = 10.5, x2 = 12 + 32.5 = 44.5, y2 = 4 + 16.5 = 20.5.
  cov[0 * cells + 6] = 0.7f;
  bbox[0 * cells + 6] = 10 / 35.0f;
  bbox[1 * cells + 6] = 6 / 35.0f;
  bbox[2 * cells + 6] = 12 / 35.0f;
  bbox[3 * cells + 6] = 4 / 35.0f;
  // Bag at cell 1 with coverage 0.8 < its threshold 0.9: dropped.
  cov[1 * cells + 1] = 0.8f;
  // Bag at cell 0: gc = (0.5, 0.5) / 35, o = 0.5 / 35 each -> [0, 0, 1, 1].
  cov[1 * cells + 0] = 0.95f;
  for (int k = 0; k < 4; ++k) bbox[(4 + k) * cells + 0] = 0.5f / 35.0f;
  // Source 128x64 stretched to 64x32: scale 0.5 both ways, so source = network * 2.
  FrameGeometry g;
  g.transform = LetterboxTransform{0.5f, 0.5f, 0.0f, 0.0f, 0, 0, 64, 32};
  g.source_width = 128;
  g.source_height = 64;
  // The bbox tensor first: the head tells them apart by their channel counts.
  const HeadTensor tensors[2] = {{bbox.data(), {1, 8, 2, 4}}, {cov.data(), {1, 2, 2, 4}}};
  Expected<std::vector<FrameDetections>> dets = DetectCpu(model, tensors, std::span(&g, 1));
  ASSERT_TRUE(dets.ok()) << dets.status().ToString();
  ASSERT_EQ((*dets)[0].size(), 2u);
  ExpectBox((*dets)[0][0], 1, 0.95f, 0, 0, 2, 2);
  ExpectBox((*dets)[0][1], 0, 0.7f, 45, 21, 89, 41);
}

TEST(DetectNetV2Head, RejectsAGridThatDoesNotMatchTheStride) {
  const ModelDescription model = Describe(R"({"family": "detectnet_v2", "input": {"width": 64, "height": 32},
      "class_names": ["person"]})");
  std::vector<float> cov(3 * 2), bbox(4 * 3 * 2);
  const HeadTensor tensors[2] = {{cov.data(), {1, 1, 2, 3}}, {bbox.data(), {1, 4, 2, 3}}};
  FrameGeometry g{LetterboxTransform{}, 64, 32};
  Expected<std::vector<Candidate>> c = DecodeHeadCpu(model, tensors, 0, g);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("at stride 16"), std::string::npos) << c.status().message();
}

// ---------------------------------------------------------------------------------------------- descriptions

TEST(ModelDescription, ParsesEveryField) {
  Expected<ModelDescription> d = ParseModelDescription(R"({
      "family": "yolox", "input": {"width": 416, "height": 320},
      "normalisation": {"order": "RGB", "scale": 0.5, "mean": [1, 2, 3], "std": 2},
      "resize": {"mode": "letterbox", "placement": "centre", "pad": [1, 2, 3]},
      "class_names": ["person", "car"], "score_threshold": [0.3, 0.6],
      "nms": {"iou": 0.5, "top_k": 200, "max_detections": 50, "class_aware": false}})",
                                                       "m.json");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->family, ModelFamily::kYolox);
  EXPECT_EQ(d->input.width, 416);
  EXPECT_EQ(d->input.height, 320);
  EXPECT_EQ(d->input.order, ChannelOrder::kRGB);
  EXPECT_EQ(d->input.scale, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(d->input.mean, (std::array<float, 3>{1, 2, 3}));
  EXPECT_EQ(d->input.std, (std::array<float, 3>{2, 2, 2}));
  EXPECT_EQ(d->input.resize, ResizeMode::kLetterbox);
  EXPECT_EQ(d->input.placement, LetterboxPlacement::kCentre);
  EXPECT_EQ(d->input.pad, (std::array<float, 3>{1, 2, 3}));
  EXPECT_EQ(d->class_names, (std::vector<std::string>{"person", "car"}));
  EXPECT_EQ(d->score_thresholds, (std::vector<float>{0.3f, 0.6f}));
  EXPECT_FLOAT_EQ(d->nms.iou_threshold, 0.5f);
  EXPECT_EQ(d->nms.top_k, 200);
  EXPECT_EQ(d->nms.max_detections, 50);
  EXPECT_FALSE(d->nms.class_aware);
}

TEST(ModelDescription, FamilyDefaults) {
  Expected<ModelDescription> yolox = ParseModelDescription(R"({"family": "yolox"})", "m.json");
  ASSERT_TRUE(yolox.ok());
  EXPECT_EQ(yolox->input.order, ChannelOrder::kBGR);
  EXPECT_EQ(yolox->input.resize, ResizeMode::kLetterbox);
  EXPECT_EQ(yolox->input.placement, LetterboxPlacement::kTopLeft);
  EXPECT_EQ(yolox->input.pad, (std::array<float, 3>{114, 114, 114}));
  EXPECT_EQ(yolox->input.scale, (std::array<float, 3>{1, 1, 1}));
  EXPECT_EQ(yolox->num_classes(), 80);
  EXPECT_EQ(yolox->class_names[0], "person");
  EXPECT_FLOAT_EQ(yolox->nms.iou_threshold, 0.45f);

  Expected<ModelDescription> peoplenet = ParseModelDescription(R"({"family": "detectnet_v2"})", "m.json");
  ASSERT_TRUE(peoplenet.ok());
  EXPECT_EQ(peoplenet->input.width, 960);
  EXPECT_EQ(peoplenet->input.height, 544);
  EXPECT_EQ(peoplenet->input.resize, ResizeMode::kStretch);
  EXPECT_EQ(peoplenet->class_names, (std::vector<std::string>{"person", "bag", "face"}));
  EXPECT_EQ(peoplenet->detectnet_v2.stride, 16);
  EXPECT_FLOAT_EQ(peoplenet->detectnet_v2.bbox_norm, 35.0f);
  EXPECT_FLOAT_EQ(peoplenet->detectnet_v2.offset, 0.5f);

  // New class names keep the family's global threshold.
  Expected<ModelDescription> v8 = ParseModelDescription(R"({"family": "yolov8", "class_names": ["x"]})", "m.json");
  ASSERT_TRUE(v8.ok());
  EXPECT_EQ(v8->score_thresholds, (std::vector<float>{0.25f}));
}

void ExpectError(const std::string& json, const std::string& expected_part) {
  Expected<ModelDescription> d = ParseModelDescription(json, "bad.json");
  ASSERT_FALSE(d.ok()) << json;
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("bad.json"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find(expected_part), std::string::npos) << d.status().message();
}

TEST(ModelDescription, ErrorsNameTheFileAndTheField) {
  ExpectError("{", "not valid JSON");
  ExpectError("[]", "must be a JSON object");
  ExpectError("{}", "field 'family': missing");
  ExpectError(R"({"family": "ssd"})", "unknown family 'ssd'");
  ExpectError(R"({"family": "yolox", "input": {"width": "416"}})", "field 'input.width': must be an integer");
  ExpectError(R"({"family": "yolox", "input": {"width": 400}})", "divisible by 32");
  ExpectError(R"({"family": "yolox", "nms": {"iou": 1.5}})", "field 'nms.iou': must be in [0, 1]");
  ExpectError(R"({"family": "yolox", "nms": {"iuo": 0.5}})", "field 'nms.iuo': unknown field");
  ExpectError(R"({"family": "yolox", "normalisation": {"order": "RGBA"}})", "field 'normalisation.order'");
  ExpectError(R"({"family": "yolox", "normalisation": {"std": [1, 0, 1]}})", "field 'normalisation.std': must not be 0");
  ExpectError(R"({"family": "yolox", "normalisation": {"mean": [1, 2]}})", "field 'normalisation.mean'");
  ExpectError(R"({"family": "yolox", "resize": {"mode": "crop"}})", "field 'resize.mode'");
  ExpectError(R"({"family": "yolox", "resize": {"pad": 300}})", "field 'resize.pad'");
  ExpectError(R"({"family": "yolox", "class_names": ["a", 3]})", "field 'class_names[1]'");
  ExpectError(R"({"family": "yolox", "class_names": ["a", "b"], "score_threshold": [0.3]})",
              "field 'score_threshold': has 1 entries for 2 classes");
  ExpectError(R"({"family": "yolox", "class_names": ["a"], "score_threshold": [2]})", "field 'score_threshold[0]'");
  ExpectError(R"({"family": "yolox", "detectnet_v2": {"stride": 16}})", "only applies to family detectnet_v2");
  ExpectError(R"({"family": "detectnet_v2", "detectnet_v2": {"bbox_norm": 0}})", "field 'detectnet_v2.bbox_norm'");
  ExpectError(R"({"family": "yolox", "nms": 3})", "field 'nms': must be an object");
}

TEST(ModelDescription, LoadsTheFileBesideTheModel) {
  EXPECT_EQ(ModelDescriptionPathFor("dir/model.onnx"), "dir/model.json");
  EXPECT_EQ(ModelDescriptionPathFor("dir.v2/model"), "dir.v2/model.json");
  const std::string dir = testing::TempDir("detect_desc");
  const std::string path = ModelDescriptionPathFor(dir + "/net.onnx");
  std::ofstream(path) << R"({"family": "yolox", "input": {"width": 416, "height": 416}})";
  Expected<ModelDescription> d = LoadModelDescription(path);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->input.width, 416);
  Expected<ModelDescription> missing = LoadModelDescription(dir + "/absent.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.json"), std::string::npos);
}

}  // namespace
}  // namespace vidscan
