// Host-side entry points of the CUDA box kernels (box_ops_gpu.cu.cc). Plain pointers and
// an opaque stream; each returns nullptr on success, else the CUDA error string.
#ifndef MASKRCNN_BODY_LIBS_BOX_OPS_GPU_H_
#define MASKRCNN_BODY_LIBS_BOX_OPS_GPU_H_

namespace mrb {

// a: (batch, n, 4), b: (batch, m, 4) -> iou: (batch, n, m).
template <typename T>
const char* LaunchPairwiseIouGpu(const T* a, const T* b, int batch, int n, int m, T* iou,
                                 void* stream);

// iou: (batch, g, m), gt_valid: (batch, g) -> matched, labels: (batch, m).
// gt_best: scratch of batch * g.
template <typename T>
const char* LaunchMatchGpu(const T* iou, const bool* gt_valid, int batch, int g, int m,
                           float pos_iou, float neg_iou, bool allow_low_quality, T* gt_best,
                           int* matched, int* labels, void* stream);

}  // namespace mrb

#endif  // MASKRCNN_BODY_LIBS_BOX_OPS_GPU_H_
