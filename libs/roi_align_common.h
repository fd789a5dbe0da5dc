// Multilevel RoIAlign arithmetic shared by the CPU (roi_align_op.cc) and CUDA
// (roi_align_gpu.cu.cc) kernels. No TensorFlow headers: this file also compiles
// standalone with nvcc.
//
// Semantics (docs/DESIGN.md "Ops", identical to maskrcnn_body.ops.roi_align):
//   features[l]: (B, H_l, W_l, C) NHWC, boxes: (B, R, 4) x1,y1,x2,y2 in image pixels
//   (pixel-edge frame, x2/y2 exclusive), levels: (B, R) int32 index into features,
//   output: (B, R, S_h, S_w, C).
//   aligned:     start = x1 / stride - 0.5, extent = (x2 - x1) / stride
//   not aligned: start = x1 / stride,       extent = max((x2 - x1) / stride, 1)
//   Bin i of S has sr samples at start + (i + (j + 0.5) / sr) * extent / S, j < sr,
//   and the bin value is the mean of its sr * sr bilinear samples. A sample with a
//   coordinate < -1 or > size (or not finite) contributes 0; otherwise the coordinate is
//   clamped to [0, size - 1] before bilinear interpolation.
#ifndef MASKRCNN_BODY_LIBS_ROI_ALIGN_COMMON_H_
#define MASKRCNN_BODY_LIBS_ROI_ALIGN_COMMON_H_

#if defined(__CUDACC__)
#define MRB_HD __host__ __device__ __forceinline__
#else
#define MRB_HD inline
#endif

namespace mrb {

// Most pyramid levels one op call accepts (the level table is passed by value to
// CUDA kernels, so it has a fixed size).
constexpr int kMaxLevels = 8;

// Per-level pointers and sizes. P is `const T*` (forward) or `T*` (gradient).
template <typename P>
struct LevelTable {
  P data[kMaxLevels];
  int height[kMaxLevels];
  int width[kMaxLevels];
  float inv_stride[kMaxLevels];  // 1 / stride, rounded to float
  int num_levels;
};

// One sampling coordinate along one axis: the two neighbouring pixel indices and
// their interpolation weights (both weights 0 when the sample is outside).
template <typename T>
struct AxisSample {
  int lo;
  int hi;
  T w_lo;
  T w_hi;
};

// Bilinear neighbours of `coord` on an axis of `size` (>= 1) pixels.
template <typename T>
MRB_HD AxisSample<T> MakeAxisSample(T coord, int size) {
  AxisSample<T> s;
  // Written so that NaN lands in the "outside" branch (no out-of-bounds index).
  if (!(coord >= T(-1) && coord <= T(size))) {
    s.lo = 0;
    s.hi = 0;
    s.w_lo = T(0);
    s.w_hi = T(0);
    return s;
  }
  if (coord <= T(0)) coord = T(0);
  int lo = static_cast<int>(coord);
  int hi;
  if (lo >= size - 1) {
    lo = hi = size - 1;
    coord = static_cast<T>(lo);
  } else {
    hi = lo + 1;
  }
  const T l = coord - static_cast<T>(lo);
  s.lo = lo;
  s.hi = hi;
  s.w_lo = T(1) - l;
  s.w_hi = l;
  return s;
}

// Start and bin size of one RoI along one axis, in level pixels. The arithmetic order
// follows ops/roi_align.py so that both paths round identically.
template <typename T>
struct AxisGeometry {
  T start;
  T bin;
};

template <typename T>
MRB_HD AxisGeometry<T> MakeAxisGeometry(T lo, T hi, T inv_stride, bool aligned,
                                        int output_size) {
  const T lo_s = lo * inv_stride;
  const T hi_s = hi * inv_stride;
  T extent = hi_s - lo_s;
  if (!aligned && extent < T(1)) extent = T(1);
  AxisGeometry<T> g;
  g.start = lo_s - (aligned ? T(0.5) : T(0));
  g.bin = extent / static_cast<T>(output_size);
  return g;
}

// Coordinate of sample j (< sr) of bin i (< output_size).
template <typename T>
MRB_HD T SampleCoord(const AxisGeometry<T>& g, int i, int j, int sampling_ratio) {
  return g.start + (static_cast<T>(i) +
                    (static_cast<T>(j) + T(0.5)) / static_cast<T>(sampling_ratio)) *
                       g.bin;
}

}  // namespace mrb

#endif  // MASKRCNN_BODY_LIBS_ROI_ALIGN_COMMON_H_
