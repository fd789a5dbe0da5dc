// CUDA kernels of MultilevelRoiAlign and its gradient (launchers declared in
// roi_align_gpu.h, called by the GPU OpKernels in roi_align_op.cc). Only CUDA runtime
// headers: `make cuda-check` compiles this file with nvcc alone.
#if GOOGLE_CUDA
#include <cuda_runtime.h>

#include "roi_align_gpu.h"

namespace mrb {
namespace {

constexpr int kThreads = 256;

inline int NumBlocks(long long n) {
  const long long b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535LL * 64 ? b : 65535LL * 64);
}

// One thread per output element (b, r, ph, pw, c); grid-stride loop.
template <typename T>
__global__ void RoiAlignForwardKernel(LevelTable<const T*> features, const T* boxes,
                                      const int* levels, long long total, int num_rois,
                                      int channels, int out_h, int out_w, int sr,
                                      bool aligned, T* output) {
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       idx < total; idx += static_cast<long long>(blockDim.x) * gridDim.x) {
    const int c = idx % channels;
    const int pw = (idx / channels) % out_w;
    const int ph = (idx / channels / out_w) % out_h;
    const long long k = idx / channels / out_w / out_h;  // b * R + r
    const long long b = k / num_rois;
    const int l = levels[k];
    if (l < 0 || l >= features.num_levels) {
      output[idx] = T(0);
      continue;
    }
    const int h = features.height[l], w = features.width[l];
    const T* box = boxes + 4 * k;
    const auto gy = MakeAxisGeometry<T>(box[1], box[3], features.inv_stride[l], aligned, out_h);
    const auto gx = MakeAxisGeometry<T>(box[0], box[2], features.inv_stride[l], aligned, out_w);
    const T* f = features.data[l] + b * h * w * channels + c;
    T acc = T(0);
    for (int iy = 0; iy < sr; ++iy) {
      const auto sy = MakeAxisSample<T>(SampleCoord(gy, ph, iy, sr), h);
      for (int ix = 0; ix < sr; ++ix) {
        const auto sx = MakeAxisSample<T>(SampleCoord(gx, pw, ix, sr), w);
        acc += sy.w_lo * sx.w_lo * f[(static_cast<long long>(sy.lo) * w + sx.lo) * channels] +
               sy.w_lo * sx.w_hi * f[(static_cast<long long>(sy.lo) * w + sx.hi) * channels] +
               sy.w_hi * sx.w_lo * f[(static_cast<long long>(sy.hi) * w + sx.lo) * channels] +
               sy.w_hi * sx.w_hi * f[(static_cast<long long>(sy.hi) * w + sx.hi) * channels];
      }
    }
    output[idx] = acc / static_cast<T>(sr * sr);
  }
}

// One thread per upstream gradient element; atomics scatter into the level gradients.
template <typename T>
__global__ void RoiAlignBackwardKernel(LevelTable<T*> grads, const T* boxes, const int* levels,
                                       long long total, int num_rois, int channels, int out_h,
                                       int out_w, int sr, bool aligned, const T* grad_output) {
  for (long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       idx < total; idx += static_cast<long long>(blockDim.x) * gridDim.x) {
    const int c = idx % channels;
    const int pw = (idx / channels) % out_w;
    const int ph = (idx / channels / out_w) % out_h;
    const long long k = idx / channels / out_w / out_h;
    const long long b = k / num_rois;
    const int l = levels[k];
    if (l < 0 || l >= grads.num_levels) continue;
    const int h = grads.height[l], w = grads.width[l];
    const T* box = boxes + 4 * k;
    const auto gy = MakeAxisGeometry<T>(box[1], box[3], grads.inv_stride[l], aligned, out_h);
    const auto gx = MakeAxisGeometry<T>(box[0], box[2], grads.inv_stride[l], aligned, out_w);
    T* g = grads.data[l] + b * h * w * channels + c;
    const T go = grad_output[idx] / static_cast<T>(sr * sr);
    for (int iy = 0; iy < sr; ++iy) {
      const auto sy = MakeAxisSample<T>(SampleCoord(gy, ph, iy, sr), h);
      if (sy.w_lo == T(0) && sy.w_hi == T(0)) continue;
      for (int ix = 0; ix < sr; ++ix) {
        const auto sx = MakeAxisSample<T>(SampleCoord(gx, pw, ix, sr), w);
        atomicAdd(g + (static_cast<long long>(sy.lo) * w + sx.lo) * channels, sy.w_lo * sx.w_lo * go);
        atomicAdd(g + (static_cast<long long>(sy.lo) * w + sx.hi) * channels, sy.w_lo * sx.w_hi * go);
        atomicAdd(g + (static_cast<long long>(sy.hi) * w + sx.lo) * channels, sy.w_hi * sx.w_lo * go);
        atomicAdd(g + (static_cast<long long>(sy.hi) * w + sx.hi) * channels, sy.w_hi * sx.w_hi * go);
      }
    }
  }
}

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

template <typename T>
const char* LaunchRoiAlignForwardGpu(const LevelTable<const T*>& features, const T* boxes,
                                     const int* levels, int batch, int num_rois, int channels,
                                     int output_height, int output_width, int sampling_ratio,
                                     bool aligned, T* output, void* stream) {
  const long long total =
      static_cast<long long>(batch) * num_rois * output_height * output_width * channels;
  if (total == 0) return nullptr;
  RoiAlignForwardKernel<T><<<NumBlocks(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      features, boxes, levels, total, num_rois, channels, output_height, output_width,
      sampling_ratio, aligned, output);
  return LastError();
}

template <typename T>
const char* LaunchRoiAlignBackwardGpu(const LevelTable<T*>& grads, const T* boxes,
                                      const int* levels, int batch, int num_rois, int channels,
                                      int output_height, int output_width, int sampling_ratio,
                                      bool aligned, const T* grad_output, void* stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  for (int l = 0; l < grads.num_levels; ++l) {
    const size_t bytes = sizeof(T) * static_cast<size_t>(batch) * grads.height[l] *
                         grads.width[l] * channels;
    if (bytes > 0 && cudaMemsetAsync(grads.data[l], 0, bytes, s) != cudaSuccess) return LastError();
  }
  const long long total =
      static_cast<long long>(batch) * num_rois * output_height * output_width * channels;
  if (total == 0) return nullptr;
  RoiAlignBackwardKernel<T><<<NumBlocks(total), kThreads, 0, s>>>(
      grads, boxes, levels, total, num_rois, channels, output_height, output_width,
      sampling_ratio, aligned, grad_output);
  return LastError();
}

#define INSTANTIATE(T)                                                                     \
  template const char* LaunchRoiAlignForwardGpu<T>(const LevelTable<const T*>&, const T*, \
                                                   const int*, int, int, int, int, int, int, \
                                                   bool, T*, void*);                       \
  template const char* LaunchRoiAlignBackwardGpu<T>(const LevelTable<T*>&, const T*,      \
                                                    const int*, int, int, int, int, int, int, \
                                                    bool, const T*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace mrb
#endif  // GOOGLE_CUDA
