// Box IoU and anchor/RoI matching arithmetic shared by the CPU (box_ops.cc) and CUDA
// (box_ops_gpu.cu.cc) kernels. No TensorFlow headers.
//
// Semantics (docs/DESIGN.md "Ops", identical to maskrcnn_body.ops.boxes.pairwise_iou and
// maskrcnn_body.ops.targets.match):
//   boxes x1,y1,x2,y2, width = x2 - x1 (no +1), sizes clamped at 0 (inverted box: area 0);
//   iou = inter / (area_a + area_b - inter), 0 where the union is 0.
//   match (iou (G, M), gt_valid (G)): invalid rows count as IoU -1; per column m,
//   max = max_g iou[g, m], matched = smallest g reaching it; label = 1 if max >= pos_iou,
//   0 if max < neg_iou, -1 (ignore) otherwise. allow_low_quality: with best_g =
//   max_m iou[g, m], every m with iou[g, m] == best_g > 0 for some g becomes positive and is
//   matched to the g with the highest such IoU (ties: smallest g). With no rows every column
//   is negative with matched 0.
#ifndef MASKRCNN_BODY_LIBS_BOX_OPS_COMMON_H_
#define MASKRCNN_BODY_LIBS_BOX_OPS_COMMON_H_

#include "roi_align_common.h"  // MRB_HD

namespace mrb {

template <typename T>
MRB_HD T ClampedSize(T v) {
  return v > T(0) ? v : T(0);
}

template <typename T>
MRB_HD T BoxIou(const T* a, const T* b) {
  const T iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
  const T ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
  const T inter = ClampedSize(iw) * ClampedSize(ih);
  const T area_a = ClampedSize(a[2] - a[0]) * ClampedSize(a[3] - a[1]);
  const T area_b = ClampedSize(b[2] - b[0]) * ClampedSize(b[3] - b[1]);
  const T uni = area_a + area_b - inter;
  return uni > T(0) ? inter / uni : T(0);
}

// Label of a column whose best IoU is `best` (1 pos, 0 neg, -1 ignore).
template <typename T>
MRB_HD int ThresholdLabel(T best, float pos_iou, float neg_iou) {
  if (best >= static_cast<T>(pos_iou)) return 1;
  if (best < static_cast<T>(neg_iou)) return 0;
  return -1;
}

// Matches one column: col[r * row_stride] is iou[r, m] for r < g; valid[r] marks real
// rows; gt_best[r] is row r's maximum over all columns (only read with low_quality; -1 for
// invalid rows).
template <typename T>
MRB_HD void MatchColumn(const T* col, long long row_stride, const bool* valid,
                        const T* gt_best, int g, float pos_iou, float neg_iou,
                        bool low_quality, int* matched, int* label) {
  int best_g = 0;
  T best = T(-1);
  for (int r = 0; r < g; ++r) {
    const T v = valid[r] ? col[r * row_stride] : T(-1);
    if (r == 0 || v > best) {
      best = v;
      best_g = r;
    }
  }
  int lab = g == 0 ? 0 : ThresholdLabel(best, pos_iou, neg_iou);
  if (low_quality) {
    int lq_g = -1;
    T lq = T(0);
    for (int r = 0; r < g; ++r) {
      const T v = col[r * row_stride];
      if (valid[r] && gt_best[r] > T(0) && v == gt_best[r] && (lq_g < 0 || v > lq)) {
        lq = v;
        lq_g = r;
      }
    }
    if (lq_g >= 0) {
      best_g = lq_g;
      lab = 1;
    }
  }
  *matched = best_g;
  *label = lab;
}

}  // namespace mrb

#endif  // MASKRCNN_BODY_LIBS_BOX_OPS_COMMON_H_
