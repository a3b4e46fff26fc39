// Issue 5, acceptance 4: the whole CPU path on one real frame — vidscan's decoder, preprocessing (CPU
// reference), inference (CPU executor), YOLOX head and NMS — against an independent reference:
// tools/yolox_reference.py (FFmpeg's decode and colour conversion, an OpenCV-style bilinear letterbox in
// NumPy, ONNX Runtime, a plain decode and NMS).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "decode/decoder.h"
#include "detect/heads.h"
#include "detect/model_description.h"
#include "infer/infer.h"
#include "preprocess/preprocess.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

TEST(PipelineCpu, YoloxOnTheFrameAt5sMatchesOnnxRuntimeReference) {
  VS_REQUIRE_DATA(video, testing::kRealVideo);
  VS_REQUIRE_DATA(onnx, "models/yolox_nano_coco_416.onnx");
  VS_REQUIRE_TOOL("ffmpeg");
  VS_REQUIRE_ORT_PYTHON();
  const std::string python = testing::EvalPython();
  // 1. Decode: the first frame at or after 5 s (the reference picks the same one).
  FrameInfo info;
  std::vector<uint8_t> luma, chroma;
  DecoderOptions decode_options;
  decode_options.device = DecoderDevice::kCpu;
  FileDecodeReport report = DecodeFile(video, decode_options, [&](DecodedFrame&& f) {
    if (!luma.empty() || f.view.info.pts_seconds < 5.0 - 1e-9) return Status::Ok();
    info = f.view.info;
    luma.assign(f.view.luma, f.view.luma + info.luma_bytes());
    chroma.assign(f.view.chroma, f.view.chroma + info.chroma_bytes());
    return Status::Ok();
  });
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  ASSERT_FALSE(luma.empty());

  // The reference decodes the same frame, chosen by display index (FFmpeg's guessed AVI times are one
  // frame late: its t >= 5.0 is frame 124).
  const std::string dir = testing::TempDir("pipeline_frame");
  const std::string cmd = python + " " + testing::SourceDir() + "/tools/yolox_reference.py --video '" + video +
                          "' --model '" + onnx + "' --frame " + std::to_string(info.frame_index) +
                          " --score 0.3 --iou 0.45 --out " + dir + "/ref.json 2>/dev/null >/dev/null";
  ASSERT_EQ(testing::RunCommand(cmd), 0) << cmd;
  nlohmann::json ref = nlohmann::json::parse(std::ifstream(dir + "/ref.json"));

  // 2. Preprocess with the family's description (BGR 0..255, letterbox top-left, pad 114) into FP32 NCHW.
  auto model = ParseModelDescription(R"({"family": "yolox", "input": {"width": 416, "height": 416}})", "test");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  PreprocessParams params = model->input;
  params.layout = TensorLayout::kNCHW;
  params.type = TensorType::kFloat32;
  auto pre = CreatePreprocessor(params, PreprocessorOptions{});
  ASSERT_TRUE(pre.ok()) << pre.status().ToString();
  std::vector<float> input(params.slot_elements());
  PreprocessInput in;
  in.frame.info = info;
  in.frame.memory = MemoryKind::kHost;
  in.frame.luma = luma.data();
  in.frame.chroma = chroma.data();
  in.roi = Roi{0, 0, info.width, info.height};
  BatchTensor batch{input.data(), 1, MemoryKind::kHost};
  auto transforms = (*pre)->Run(std::span(&in, 1), batch);
  ASSERT_TRUE(transforms.ok()) << transforms.status().ToString();

  // 3. Inference on the CPU executor.
  auto loaded = infer::LoadOnnx(onnx);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto executor = infer::CpuExecutor::Create(*loaded, 1);
  ASSERT_TRUE(executor.ok()) << executor.status().ToString();
  std::vector<infer::HostTensor> outputs;
  infer::HostTensorView view{{1, 3, params.height, params.width}, input.data()};
  Status run = executor->Run(std::span(&view, 1), &outputs);
  ASSERT_TRUE(run.ok()) << run.ToString();
  ASSERT_EQ(outputs.size(), 1u);

  // 4. Head + NMS, boxes back in source pixels.
  const FrameGeometry geometry{(*transforms)[0], info.width, info.height};
  const HeadTensor tensor{outputs[0].data.data(), outputs[0].shape};
  auto dets = DetectCpu(*model, std::span(&tensor, 1), std::span(&geometry, 1));
  ASSERT_TRUE(dets.ok()) << dets.status().ToString();

  // Same count of people at score >= 0.3; each reference person matched by a box of ours within 1 px.
  std::vector<const Detection*> ours;
  for (const Detection& d : (*dets)[0])
    if (d.class_id == 0 && d.score >= 0.3f) ours.push_back(&d);
  std::vector<nlohmann::json> theirs;
  for (const auto& d : ref["detections"])
    if (d["class_id"].get<int>() == 0 && d["score"].get<double>() >= 0.3) theirs.push_back(d);
  std::printf("frame %lld (%.2f s): %zu people (vidscan CPU path), %zu (ONNX Runtime reference)\n",
              static_cast<long long>(info.frame_index), info.pts_seconds, ours.size(), theirs.size());
  EXPECT_EQ(ours.size(), theirs.size());
  EXPECT_NEAR(static_cast<double>(theirs.size()), 25.0, 3.0) << "the data README: about 25 people";
  // Tolerance: the two sides preprocess independently (FFmpeg converts to 8-bit BGR and then resizes;
  // vidscan resizes YUV and converts in float), and the network turns those sub-level input differences
  // into box shifts: seen 20 of 22 people within 1 px, the other two within 2.6 px. So: every person
  // within 3 px, and at least 90 % within 1 px.
  double worst = 0;
  size_t within_one_pixel = 0;
  for (const auto& t : theirs) {
    double best = 1e9;
    for (const Detection* d : ours) {
      const double box[4] = {d->x1, d->y1, d->x2, d->y2};
      double err = 0;
      for (int k = 0; k < 4; ++k) err = std::max(err, std::fabs(box[k] - t["box"][k].get<double>()));
      best = std::min(best, err);
    }
    worst = std::max(worst, best);
    within_one_pixel += best <= 1.0;
    EXPECT_LE(best, 3.0) << "reference box " << t["box"].dump() << " score " << t["score"];
    if (best > 1.0) std::printf("  %.2f px off: reference box %s score %.3f\n", best, t["box"].dump().c_str(), t["score"].get<double>());
  }
  EXPECT_GE(within_one_pixel * 10, theirs.size() * 9) << within_one_pixel << " of " << theirs.size() << " within 1 px";
  std::printf("worst corner difference over matched people: %.3f px\n", worst);
}

}  // namespace
}  // namespace vidscan
