// Issue 5, acceptance 4: the whole CPU path on one real frame — vidscan's decoder, preprocessing (CPU
// reference), inference (CPU executor), YOLOX head and NMS — against tools/yolox_reference.py, which
// shares no code with vidscan: FFmpeg's decode, its own preprocessing in NumPy, ONNX Runtime, a plain
// decode and NMS. The reference preprocesses two ways, and the test checks against both:
//   spec:    vidscan's documented preprocess function (docs/preprocess.md) written again in NumPy from
//            FFmpeg's YUV planes: the acceptance check (same people, every box within 1 px);
//   swscale: FFmpeg's own colour conversion to 8-bit BGR, then an OpenCV-style resize: a fully independent
//            preprocessing, so a shared misreading of the spec (siting, matrix, mapping) would show.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

struct BoxAgreement {
  size_t within_one_pixel = 0;
  double worst = 0;  // px, over every reference person
};

// For every reference person: the largest corner difference (px) to the closest of our people.
BoxAgreement CompareWithReference(const std::vector<const Detection*>& ours, const std::vector<nlohmann::json>& theirs,
                                  const char* reference) {
  BoxAgreement a;
  for (const auto& t : theirs) {
    double best = 1e9;
    for (const Detection* d : ours) {
      const double box[4] = {d->x1, d->y1, d->x2, d->y2};
      double err = 0;
      for (int k = 0; k < 4; ++k) err = std::max(err, std::fabs(box[k] - t["box"][k].get<double>()));
      best = std::min(best, err);
    }
    a.worst = std::max(a.worst, best);
    a.within_one_pixel += best <= 1.0;
    if (best > 1.0) {
      std::printf("  %s: %.2f px off: reference box %s score %.3f\n", reference, best, t["box"].dump().c_str(),
                  t["score"].get<double>());
    }
  }
  std::printf("%s: worst corner difference over matched people %.3f px, %zu of %zu within 1 px\n", reference,
              a.worst, a.within_one_pixel, theirs.size());
  return a;
}

std::vector<nlohmann::json> PeopleOf(const nlohmann::json& ref) {
  std::vector<nlohmann::json> people;
  for (const auto& d : ref["detections"])
    if (d["class_id"].get<int>() == 0 && d["score"].get<double>() >= 0.3) people.push_back(d);
  return people;
}

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
  // frame late: its t >= 5.0 is frame 124). The spec run also saves its network input.
  const std::string dir = testing::TempDir("pipeline_frame");
  auto run_reference = [&](const std::string& mode, nlohmann::json* out) {
    const std::string cmd = python + " " + testing::SourceDir() + "/tools/yolox_reference.py --video '" + video +
                            "' --model '" + onnx + "' --frame " + std::to_string(info.frame_index) +
                            " --score 0.3 --iou 0.45 --preprocess " + mode + " --out " + dir + "/" + mode +
                            ".json --input-tensor " + dir + "/" + mode + ".input.f32 2>/dev/null >/dev/null";
    ASSERT_EQ(testing::RunCommand(cmd), 0) << cmd;
    *out = nlohmann::json::parse(std::ifstream(dir + "/" + mode + ".json"));
  };
  nlohmann::json spec_ref, swscale_ref;
  ASSERT_NO_FATAL_FAILURE(run_reference("spec", &spec_ref));
  ASSERT_NO_FATAL_FAILURE(run_reference("swscale", &swscale_ref));

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

  // The network input first: vidscan's CPU preprocess against the spec written again. vidscan computes
  // sample positions in float32 (off by up to ~7e-5 px at x ~ 1280 here) where the reference uses float64;
  // times the steepest edges (~110 luma codes per pixel in this frame) that is the 0.0085 levels measured, and
  // at most ~0.03 for a full-swing edge. Bound 0.05 levels. Getting the function wrong costs far more
  // (measured on this frame: chroma rows sited a quarter row off 0.53 levels, the BT.601 matrix 0.92,
  // full range 18).
  {
    std::vector<float> spec_input(input.size());
    std::ifstream raw(dir + "/spec.input.f32", std::ios::binary);
    ASSERT_TRUE(raw.read(reinterpret_cast<char*>(spec_input.data()), spec_input.size() * sizeof(float)));
    double max_diff = 0;
    for (size_t i = 0; i < input.size(); ++i)
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(input[i] - spec_input[i])));
    std::printf("network input, vidscan vs the spec reference: max |difference| %.2e levels (0..255)\n", max_diff);
    EXPECT_LE(max_diff, 0.05);
  }

  std::vector<const Detection*> ours;
  for (const Detection& d : (*dets)[0])
    if (d.class_id == 0 && d.score >= 0.3f) ours.push_back(&d);
  const std::vector<nlohmann::json> spec_people = PeopleOf(spec_ref), swscale_people = PeopleOf(swscale_ref);
  std::printf("frame %lld (%.2f s): %zu people (vidscan CPU path), %zu (reference, spec preprocessing), %zu "
              "(reference, swscale preprocessing)\n",
              static_cast<long long>(info.frame_index), info.pts_seconds, ours.size(), spec_people.size(),
              swscale_people.size());
  EXPECT_NEAR(static_cast<double>(spec_people.size()), 25.0, 3.0) << "the data README: about 25 people";

  // The acceptance: same count of people at score >= 0.3, every reference person matched by one of ours
  // within 1 px (largest corner difference). Same input up to float rounding, so what remains is ONNX
  // Runtime's arithmetic vs the CPU executor's (raw outputs within ~3e-4) and float32 vs float64 box
  // mapping: measured 0.005 px worst.
  EXPECT_EQ(ours.size(), spec_people.size());
  const BoxAgreement spec = CompareWithReference(ours, spec_people, "spec reference");
  EXPECT_EQ(spec.within_one_pixel, spec_people.size());
  EXPECT_LE(spec.worst, 1.0);

  // Cross-check against FFmpeg's colour conversion, looser: its input differs from vidscan's by up to
  // 4.8 levels (mean 0.16: 8-bit rounding twice, the clamp before the resize instead of after, swscale's
  // own chroma interpolation), and the network turns such differences into box shifts of a couple of
  // pixels for a few borderline people (measured: 20 of 22 within 1 px, the other two 1.8 and 2.6 px).
  // So: same count, every person within 3 px, at least 90 % within 1 px.
  EXPECT_EQ(ours.size(), swscale_people.size());
  const BoxAgreement swscale = CompareWithReference(ours, swscale_people, "swscale reference");
  EXPECT_LE(swscale.worst, 3.0);
  EXPECT_GE(swscale.within_one_pixel * 10, swscale_people.size() * 9)
      << swscale.within_one_pixel << " of " << swscale_people.size() << " within 1 px";
}

}  // namespace
}  // namespace vidscan
