// CUDA kernels of BoxPairwiseIou and BoxMatch (launchers declared in box_ops_gpu.h, called
// by the GPU OpKernels in box_ops.cc). Only CUDA runtime headers: `make cuda-check`
// compiles this file with nvcc alone.
#if GOOGLE_CUDA
#include <cuda_runtime.h>

#include "box_ops_common.h"
#include "box_ops_gpu.h"

namespace mrb {
namespace {

constexpr int kThreads = 256;

inline int NumBlocks(long long n) {
  const long long b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535LL * 64 ? b : 65535LL * 64);
}

template <typename T>
__global__ void PairwiseIouKernel(const T* a, const T* b, long long total, int n, int m,
                                  T* iou) {
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       idx < total; idx += static_cast<long long>(blockDim.x) * gridDim.x) {
    const long long j = idx % m;
    const long long row = idx / m;  // batch * n + i
    const long long bi = row / n;
    iou[idx] = BoxIou(a + 4 * row, b + 4 * (bi * m + j));
  }
}

// One block per (batch, gt) row: best IoU over the m columns (-1 for invalid rows).
template <typename T>
__global__ void RowMaxKernel(const T* iou, const bool* valid, int m, T* gt_best) {
  __shared__ T partial[kThreads];
  const long long row = blockIdx.x;
  T best = T(-1);
  if (valid[row]) {
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
      const T v = iou[row * m + j];
      best = v > best ? v : best;
    }
  }
  partial[threadIdx.x] = best;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && partial[threadIdx.x + s] > partial[threadIdx.x]) {
      partial[threadIdx.x] = partial[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) gt_best[row] = valid[row] ? partial[0] : T(-1);
}

template <typename T>
__global__ void MatchKernel(const T* iou, const bool* valid, const T* gt_best, long long total,
                            int g, int m, float pos_iou, float neg_iou, bool low_quality,
                            int* matched, int* labels) {
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       idx < total; idx += static_cast<long long>(blockDim.x) * gridDim.x) {
    const long long bi = idx / m, j = idx % m;
    MatchColumn(iou + bi * g * m + j, static_cast<long long>(m), valid + bi * g,
                gt_best + bi * g, g, pos_iou, neg_iou, low_quality, matched + idx,
                labels + idx);
  }
}

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

template <typename T>
const char* LaunchPairwiseIouGpu(const T* a, const T* b, int batch, int n, int m, T* iou,
                                 void* stream) {
  const long long total = static_cast<long long>(batch) * n * m;
  if (total == 0) return nullptr;
  PairwiseIouKernel<T><<<NumBlocks(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      a, b, total, n, m, iou);
  return LastError();
}

template <typename T>
const char* LaunchMatchGpu(const T* iou, const bool* gt_valid, int batch, int g, int m,
                           float pos_iou, float neg_iou, bool allow_low_quality, T* gt_best,
                           int* matched, int* labels, void* stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (allow_low_quality && batch * g > 0) {
    RowMaxKernel<T><<<batch * g, kThreads, 0, s>>>(iou, gt_valid, m, gt_best);
    if (const char* err = LastError()) return err;
  }
  const long long total = static_cast<long long>(batch) * m;
  if (total == 0) return nullptr;
  MatchKernel<T><<<NumBlocks(total), kThreads, 0, s>>>(iou, gt_valid, gt_best, total, g, m,
                                                        pos_iou, neg_iou, allow_low_quality,
                                                        matched, labels);
  return LastError();
}

#define INSTANTIATE(T)                                                                    \
  template const char* LaunchPairwiseIouGpu<T>(const T*, const T*, int, int, int, T*,    \
                                               void*);                                   \
  template const char* LaunchMatchGpu<T>(const T*, const bool*, int, int, int, float,    \
                                         float, bool, T*, int*, int*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace mrb
#endif  // GOOGLE_CUDA
