// Host-side entry points of the CUDA RoIAlign kernels (roi_align_gpu.cu.cc).
// Plain pointers and an opaque stream so that the TensorFlow op file needs no CUDA
// headers. Each returns nullptr on success, else the CUDA error string.
#ifndef MASKRCNN_BODY_LIBS_ROI_ALIGN_GPU_H_
#define MASKRCNN_BODY_LIBS_ROI_ALIGN_GPU_H_

#include "roi_align_common.h"

namespace mrb {

// output: (B, R, S_h, S_w, C). A RoI whose level is out of range gets zeros (the GPU
// kernel cannot raise; the CPU kernel does).
template <typename T>
const char* LaunchRoiAlignForwardGpu(const LevelTable<const T*>& features, const T* boxes,
                                     const int* levels, int batch, int num_rois,
                                     int channels, int output_height, int output_width, int sampling_ratio,
                                     bool aligned, T* output, void* stream);

// Zeroes every grads.data[l] (B, H_l, W_l, C) and scatter-adds grad_output into it.
template <typename T>
const char* LaunchRoiAlignBackwardGpu(const LevelTable<T*>& grads, const T* boxes,
                                      const int* levels, int batch, int num_rois,
                                      int channels, int output_height, int output_width, int sampling_ratio,
                                      bool aligned, const T* grad_output, void* stream);

}  // namespace mrb

#endif  // MASKRCNN_BODY_LIBS_ROI_ALIGN_GPU_H_
