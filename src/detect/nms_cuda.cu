#include "detect/nms_cuda.h"

#include <cub/device/device_segmented_radix_sort.cuh>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "detect/box_iou.h"

namespace vidscan {
namespace {

constexpr int kBitsPerWord = 64;

__global__ void BuildKeysKernel(const Candidate* candidates, const int* counts, int frames, int capacity,
                                uint64_t* keys, int* slots, int* segment_begin, int* segment_end) {
  const int f = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= frames) return;
  const int n = min(max(counts[f], 0), capacity);
  if (i == 0) {
    segment_begin[f] = f * capacity;
    segment_end[f] = f * capacity + n;
  }
  if (i >= n) return;
  const Candidate& c = candidates[static_cast<size_t>(f) * capacity + i];
  keys[static_cast<size_t>(f) * capacity + i] = NmsSortKey(c.score, c.index);
  slots[static_cast<size_t>(f) * capacity + i] = i;
}

__global__ void GatherKernel(const Candidate* candidates, const int* counts, const int* sorted_slots, int frames,
                             int capacity, int top_k, Candidate* sorted, int* sorted_count) {
  const int f = blockIdx.y;
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= frames) return;
  const int n = min(min(max(counts[f], 0), capacity), top_k);
  if (k == 0) sorted_count[f] = n;
  if (k >= n) return;
  const int slot = sorted_slots[static_cast<size_t>(f) * capacity + k];
  sorted[static_cast<size_t>(f) * top_k + k] = candidates[static_cast<size_t>(f) * capacity + slot];
}

// Block (column word, row word, frame), 64 threads: thread t's row box against the 64 column boxes.
__global__ void SuppressionMaskKernel(const Candidate* sorted, const int* sorted_count, int top_k, int words,
                                      float iou_threshold, bool class_aware, uint64_t* mask) {
  const int col_word = blockIdx.x, row_word = blockIdx.y, f = blockIdx.z;
  const int n = sorted_count[f];
  const int row = row_word * kBitsPerWord + threadIdx.x;
  if (row_word * kBitsPerWord >= n || col_word * kBitsPerWord >= n) return;
  __shared__ Candidate cols[kBitsPerWord];
  const Candidate* frame_boxes = sorted + static_cast<size_t>(f) * top_k;
  const int col_count = min(kBitsPerWord, n - col_word * kBitsPerWord);
  if (threadIdx.x < col_count) cols[threadIdx.x] = frame_boxes[col_word * kBitsPerWord + threadIdx.x];
  __syncthreads();
  if (row >= n) return;
  uint64_t bits = 0;
  if (col_word >= row_word) {  // columns before the row never matter: they were decided before it
    const Candidate a = frame_boxes[row];
    const int first = col_word == row_word ? threadIdx.x + 1 : 0;
    for (int j = first; j < col_count; ++j) {
      const Candidate& b = cols[j];
      if (class_aware && a.class_id != b.class_id) continue;
      if (BoxIou(a.x1, a.y1, a.x2, a.y2, b.x1, b.y1, b.x2, b.y2) > iou_threshold) bits |= 1ull << j;
    }
  }
  mask[(static_cast<size_t>(f) * top_k + row) * words + col_word] = bits;
}

// One warp per frame walks the sorted boxes in order; `removed` (shared) collects the rows of kept boxes.
__global__ void KeepKernel(const Candidate* sorted, const int* sorted_count, const uint64_t* mask, int top_k, int words,
                           int max_detections, Candidate* kept, int* kept_count) {
  extern __shared__ uint64_t removed[];
  const int f = blockIdx.x, lane = threadIdx.x;
  const int n = sorted_count[f];
  const int used_words = (n + kBitsPerWord - 1) / kBitsPerWord;
  for (int w = lane; w < used_words; w += warpSize) removed[w] = 0;
  __syncwarp();
  int count = 0;
  for (int i = 0; i < n && count < max_detections; ++i) {
    const bool is_removed = (removed[i / kBitsPerWord] >> (i % kBitsPerWord)) & 1ull;
    if (is_removed) continue;
    if (lane == 0) kept[static_cast<size_t>(f) * max_detections + count] = sorted[static_cast<size_t>(f) * top_k + i];
    ++count;
    const uint64_t* row = mask + (static_cast<size_t>(f) * top_k + i) * words;
    for (int w = i / kBitsPerWord + lane; w < used_words; w += warpSize) removed[w] |= row[w];
    __syncwarp();
  }
  if (lane == 0) kept_count[f] = count;
}

template <typename T>
Status Allocate(DeviceBuffer* buffer, size_t elements) {
  VS_ASSIGN_OR_RETURN(*buffer, DeviceBuffer::Allocate(std::max<size_t>(elements, 1) * sizeof(T)));
  return Status::Ok();
}

Status SortPairs(void* temp, size_t* temp_bytes, const uint64_t* keys, uint64_t* sorted_keys, const int* slots,
                 int* sorted_slots, int items, int segments, const int* begin, const int* end, cudaStream_t stream) {
  return CudaStatus(cub::DeviceSegmentedRadixSort::SortPairs(temp, *temp_bytes, keys, sorted_keys, slots, sorted_slots,
                                                             items, segments, begin, end, 0, 64, stream),
                    "cub::DeviceSegmentedRadixSort::SortPairs");
}

}  // namespace

Expected<CudaBatchNms> CudaBatchNms::Create(int max_frames, int capacity, const NmsParams& params) {
  if (max_frames <= 0 || capacity <= 0 || params.top_k <= 0 || params.max_detections <= 0) {
    return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: frames, capacity, top_k and max_detections must be positive");
  }
  if (static_cast<int64_t>(max_frames) * capacity > (int64_t{1} << 30)) {
    return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: frames x capacity exceeds 2^30 candidates");
  }
  CudaBatchNms n;
  n.max_frames_ = max_frames;
  n.capacity_ = capacity;
  n.params_ = params;
  n.top_k_ = std::min(params.top_k, capacity);
  n.words_ = (n.top_k_ + kBitsPerWord - 1) / kBitsPerWord;
  // The keep kernel holds one frame's removal bits in shared memory.
  if (static_cast<size_t>(n.words_) * sizeof(uint64_t) > 48 * 1024) {
    return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: top_k " + std::to_string(n.top_k_) + " is too large");
  }
  const size_t items = static_cast<size_t>(max_frames) * capacity;
  VS_RETURN_IF_ERROR(Allocate<uint64_t>(&n.keys_, items));
  VS_RETURN_IF_ERROR(Allocate<uint64_t>(&n.sorted_keys_, items));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.slots_, items));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.sorted_slots_, items));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.segment_begin_, max_frames));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.segment_end_, max_frames));
  VS_RETURN_IF_ERROR(Allocate<Candidate>(&n.sorted_, static_cast<size_t>(max_frames) * n.top_k_));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.sorted_count_, max_frames));
  VS_RETURN_IF_ERROR(Allocate<uint64_t>(&n.mask_, static_cast<size_t>(max_frames) * n.top_k_ * n.words_));
  VS_RETURN_IF_ERROR(Allocate<Candidate>(&n.kept_, static_cast<size_t>(max_frames) * params.max_detections));
  VS_RETURN_IF_ERROR(Allocate<int>(&n.kept_count_, max_frames));
  VS_ASSIGN_OR_RETURN(n.host_kept_,
                      PinnedBuffer::Allocate(static_cast<size_t>(max_frames) * params.max_detections * sizeof(Candidate)));
  VS_ASSIGN_OR_RETURN(n.host_kept_count_, PinnedBuffer::Allocate(static_cast<size_t>(max_frames) * sizeof(int)));
  VS_ASSIGN_OR_RETURN(n.copied_, CudaEvent::Create(cudaEventDisableTiming));
  VS_RETURN_IF_ERROR(SortPairs(nullptr, &n.sort_temp_bytes_, nullptr, nullptr, nullptr, nullptr, static_cast<int>(items),
                               max_frames, nullptr, nullptr, nullptr));
  VS_RETURN_IF_ERROR(Allocate<uint8_t>(&n.sort_temp_, n.sort_temp_bytes_));
  return Expected<CudaBatchNms>(std::move(n));
}

Status CudaBatchNms::Enqueue(const Candidate* d_candidates, const int* d_counts, int frames, cudaStream_t stream) {
  if (frames <= 0 || frames > max_frames_) {
    return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: " + std::to_string(frames) + " frames, at most " +
                                                       std::to_string(max_frames_));
  }
  frames_ = frames;
  const int threads = 256;
  const dim3 key_grid((capacity_ + threads - 1) / threads, frames);
  BuildKeysKernel<<<key_grid, threads, 0, stream>>>(d_candidates, d_counts, frames, capacity_, keys_.as<uint64_t>(),
                                                     slots_.as<int>(), segment_begin_.as<int>(), segment_end_.as<int>());
  VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());

  size_t temp_bytes = 0;
  const int items = frames * capacity_;
  VS_RETURN_IF_ERROR(SortPairs(nullptr, &temp_bytes, nullptr, nullptr, nullptr, nullptr, items, frames, nullptr, nullptr,
                               stream));
  if (temp_bytes > sort_temp_bytes_) {
    return MakeError(StatusCode::kInternal, "CudaBatchNms: CUB wants more sort scratch for fewer frames");
  }
  temp_bytes = sort_temp_bytes_;
  VS_RETURN_IF_ERROR(SortPairs(sort_temp_.data(), &temp_bytes, keys_.as<uint64_t>(), sorted_keys_.as<uint64_t>(),
                               slots_.as<int>(), sorted_slots_.as<int>(), items, frames, segment_begin_.as<int>(),
                               segment_end_.as<int>(), stream));

  const dim3 gather_grid((top_k_ + threads - 1) / threads, frames);
  GatherKernel<<<gather_grid, threads, 0, stream>>>(d_candidates, d_counts, sorted_slots_.as<int>(), frames, capacity_,
                                                     top_k_, sorted_.as<Candidate>(), sorted_count_.as<int>());
  VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());

  const dim3 mask_grid(words_, words_, frames);
  SuppressionMaskKernel<<<mask_grid, kBitsPerWord, 0, stream>>>(sorted_.as<Candidate>(), sorted_count_.as<int>(), top_k_,
                                                                 words_, params_.iou_threshold, params_.class_aware,
                                                                 mask_.as<uint64_t>());
  VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());

  KeepKernel<<<frames, 32, words_ * sizeof(uint64_t), stream>>>(sorted_.as<Candidate>(), sorted_count_.as<int>(),
                                                                 mask_.as<uint64_t>(), top_k_, words_,
                                                                 params_.max_detections, kept_.as<Candidate>(),
                                                                 kept_count_.as<int>());
  VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return Status::Ok();
}

Status CudaBatchNms::EnqueueCopyOut(cudaStream_t stream) {
  if (frames_ == 0) return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: copy-out before Enqueue");
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_kept_count_.data(), kept_count_.data(), frames_ * sizeof(int),
                                          cudaMemcpyDeviceToHost, stream));
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_kept_.data(), kept_.data(),
                                          static_cast<size_t>(frames_) * params_.max_detections * sizeof(Candidate),
                                          cudaMemcpyDeviceToHost, stream));
  VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(copied_.get(), stream));
  copy_pending_ = true;
  return Status::Ok();
}

Expected<std::vector<std::vector<Candidate>>> CudaBatchNms::Fetch(cudaStream_t stream) {
  VS_RETURN_IF_ERROR(EnqueueCopyOut(stream));
  return WaitCopyOut();
}

Expected<std::vector<std::vector<Candidate>>> CudaBatchNms::WaitCopyOut() {
  if (!copy_pending_) return MakeError(StatusCode::kInvalidArgument, "CudaBatchNms: WaitCopyOut before EnqueueCopyOut");
  VS_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(copied_.get()));
  copy_pending_ = false;
  std::vector<std::vector<Candidate>> result(frames_);
  const int* counts = host_kept_count_.as<int>();
  const Candidate* kept = host_kept_.as<Candidate>();
  for (int f = 0; f < frames_; ++f) {
    const Candidate* first = kept + static_cast<size_t>(f) * params_.max_detections;
    result[f].assign(first, first + counts[f]);
  }
  return result;
}

}  // namespace vidscan
