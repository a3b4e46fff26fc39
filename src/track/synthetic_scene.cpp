#include "track/synthetic_scene.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace vidscan::track {

std::vector<SyntheticFrame> MakeSyntheticScene(const SyntheticSceneParams& p) {
  std::mt19937 rng(p.seed);
  auto uniform = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  std::normal_distribution<float> noise(0.f, p.position_noise);
  struct Object {
    float x, y, w, h, vx, vy;
  };
  std::vector<Object> objects(p.objects);
  for (auto& o : objects) {
    o.w = uniform(p.min_box_width, p.max_box_width);
    o.h = o.w * uniform(2.f, 3.f);
    o.x = uniform(0, p.width - o.w);
    o.y = uniform(0, p.height - o.h);
    const float speed = uniform(p.min_speed, p.max_speed);
    const float angle = uniform(0, 6.2831853f);
    o.vx = speed * std::cos(angle);
    o.vy = speed * std::sin(angle);
  }
  std::vector<SyntheticFrame> frames(p.frames);
  for (auto& f : frames) {
    for (size_t i = 0; i < objects.size(); ++i) {
      f.gt_ids.push_back(static_cast<int>(i) + 1);
      f.gt_boxes.push_back({objects[i].x, objects[i].y, objects[i].w, objects[i].h});
    }
    for (size_t i = 0; i < objects.size(); ++i) {
      const BoxTlwh& b = f.gt_boxes[i];
      // Nearer to the camera = lower bottom edge in the image.
      bool occluded = false;
      for (size_t j = 0; j < objects.size() && !occluded; ++j) {
        const BoxTlwh& c = f.gt_boxes[j];
        occluded = j != i && c.y + c.h > b.y + b.h && Iou(b, c) > p.occlusion_iou;
      }
      float score = uniform(0.65f, 0.99f);
      if (occluded) {
        if (uniform(0, 1) < 0.5f) continue;
        score = uniform(0.2f, 0.55f);
      } else if (uniform(0, 1) < p.miss_rate) {
        continue;
      } else if (uniform(0, 1) < p.low_score_rate) {
        score = uniform(0.2f, 0.55f);
      }
      const float x0 = b.x + noise(rng), y0 = b.y + noise(rng);
      const float x1 = b.x + b.w + noise(rng), y1 = b.y + b.h + noise(rng);
      f.detections.push_back({{x0, y0, std::max(1.f, x1 - x0), std::max(1.f, y1 - y0)}, score});
    }
    // Poisson-distributed false positives anywhere in the image.
    const int fps = std::poisson_distribution<int>(p.false_positives_per_frame)(rng);
    for (int k = 0; k < fps; ++k) {
      const float w = uniform(p.min_box_width, p.max_box_width), h = w * uniform(1.f, 3.f);
      f.detections.push_back({{uniform(0, p.width - w), uniform(0, p.height - h), w, h}, uniform(0.1f, 0.7f)});
    }
    std::shuffle(f.detections.begin(), f.detections.end(), rng);
    for (auto& o : objects) {
      o.x += o.vx;
      o.y += o.vy;
      if (o.x < 0 || o.x + o.w > p.width) o.vx = -o.vx, o.x = std::clamp(o.x, 0.f, p.width - o.w);
      if (o.y < 0 || o.y + o.h > p.height) o.vy = -o.vy, o.y = std::clamp(o.y, 0.f, p.height - o.h);
    }
  }
  return frames;
}

}  // namespace vidscan::track
