// The per-cell arithmetic of the output heads, host/device, so that the CPU heads (heads.cpp) and the CUDA
// decode kernels (heads_cuda.cu) evaluate one set of formulas. Formulas and their sources: heads.cpp.
#pragma once

#include <math.h>

#include "preprocess/letterbox.h"

#if defined(__CUDACC__)
#define VS_HEAD_HD __host__ __device__
#else
#define VS_HEAD_HD
#endif

namespace vidscan::head_math {

// A YOLOX anchor: its grid cell and stride, from its position in the concatenated stride-8/16/32 grids.
struct YoloxCell {
  int gx = 0, gy = 0, stride = 0;
};
VS_HEAD_HD inline YoloxCell YoloxCellOf(int anchor, int input_width, int input_height) {
  int first = 0;
  for (int stride = 8; stride <= 32; stride *= 2) {
    const int grid_w = input_width / stride, cells = grid_w * (input_height / stride);
    if (anchor < first + cells || stride == 32) {
      const int local = anchor - first;
      return YoloxCell{local % grid_w, local / grid_w, stride};
    }
    first += cells;
  }
  return {};
}

// Index of the best of `count` scores `step` apart (the first of equal maxima).
VS_HEAD_HD inline int BestClass(const float* scores, int count, int step) {
  int best = 0;
  for (int c = 1; c < count; ++c) {
    if (scores[c * step] > scores[best * step]) best = c;
  }
  return best;
}

// Box corners in network pixels from a centre and a size.
VS_HEAD_HD inline void CentreSizeToCorners(float cx, float cy, float w, float h, float* box) {
  box[0] = cx - 0.5f * w;
  box[1] = cy - 0.5f * h;
  box[2] = cx + 0.5f * w;
  box[3] = cy + 0.5f * h;
}

// YOLOX raw terms (x, y, log w, log h) of a cell -> corners in network pixels.
VS_HEAD_HD inline void YoloxBox(const float* raw, YoloxCell cell, float* box) {
  const float s = static_cast<float>(cell.stride);
  CentreSizeToCorners((raw[0] + static_cast<float>(cell.gx)) * s, (raw[1] + static_cast<float>(cell.gy)) * s,
                      expf(raw[2]) * s, expf(raw[3]) * s, box);
}

// DetectNet_v2 offsets o1..o4 of a cell (row, col) -> corners in network pixels.
VS_HEAD_HD inline void DetectNetBox(float o1, float o2, float o3, float o4, int row, int col, int stride,
                                    float bbox_norm, float offset, float* box) {
  const float centre_x = (static_cast<float>(col * stride) + offset) / bbox_norm;
  const float centre_y = (static_cast<float>(row * stride) + offset) / bbox_norm;
  box[0] = (centre_x - o1) * bbox_norm;
  box[1] = (centre_y - o2) * bbox_norm;
  box[2] = (o3 + centre_x) * bbox_norm;
  box[3] = (o4 + centre_y) * bbox_norm;
}

// Maps a network box to the source frame and clips it to [0, width] x [0, height]; false when nothing is
// left (the box lay in the padding or outside the frame).
VS_HEAD_HD inline bool MapAndClip(const LetterboxTransform& t, int width, int height, float* box) {
  t.NetworkBoxToSource(box);
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  box[0] = fminf(fmaxf(box[0], 0.0f), w);
  box[1] = fminf(fmaxf(box[1], 0.0f), h);
  box[2] = fminf(fmaxf(box[2], 0.0f), w);
  box[3] = fminf(fmaxf(box[3], 0.0f), h);
  return box[2] > box[0] && box[3] > box[1];
}

}  // namespace vidscan::head_math
