// BoxPairwiseIou and BoxMatch: op registration, shape functions, validation and the
// multithreaded CPU kernels (CUDA kernels in box_ops_gpu.cu.cc when built with
// GOOGLE_CUDA). Semantics: box_ops_common.h and docs/DESIGN.md "Ops".
// Neither op has a gradient (they produce training targets).
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "box_ops_common.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#if GOOGLE_CUDA
#include "box_ops_gpu.h"
#endif

namespace tensorflow {

using shape_inference::DimensionHandle;
using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

REGISTER_OP("BoxPairwiseIou")
    .Input("a: T")
    .Input("b: T")
    .Output("iou: T")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle a, b, batch_a, batch_b, batch;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 2, &a));
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(1), 2, &b));
      DimensionHandle unused;
      TF_RETURN_IF_ERROR(c->WithValue(c->Dim(a, -1), 4, &unused));
      TF_RETURN_IF_ERROR(c->WithValue(c->Dim(b, -1), 4, &unused));
      TF_RETURN_IF_ERROR(c->Subshape(a, 0, -2, &batch_a));
      TF_RETURN_IF_ERROR(c->Subshape(b, 0, -2, &batch_b));
      TF_RETURN_IF_ERROR(c->Merge(batch_a, batch_b, &batch));
      ShapeHandle out;
      TF_RETURN_IF_ERROR(
          c->Concatenate(batch, c->MakeShape({c->Dim(a, -2), c->Dim(b, -2)}), &out));
      c->set_output(0, out);
      return OkStatus();
    })
    .Doc(R"doc(
Pairwise IoU of boxes a (..., N, 4) and b (..., M, 4) with equal leading dimensions ->
(..., N, M). Width = x2 - x1; 0 where the union is not positive.
)doc");

REGISTER_OP("BoxMatch")
    .Input("iou: T")
    .Input("gt_valid: bool")
    .Output("matched_gt: int32")
    .Output("labels: int32")
    .Attr("T: {float, double}")
    .Attr("pos_iou: float")
    .Attr("neg_iou: float")
    .Attr("allow_low_quality: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle iou, valid, rows, out;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 2, &iou));
      TF_RETURN_IF_ERROR(c->Subshape(iou, 0, -1, &rows));
      TF_RETURN_IF_ERROR(c->Merge(rows, c->input(1), &valid));
      TF_RETURN_IF_ERROR(c->Subshape(iou, 0, -2, &out));
      TF_RETURN_IF_ERROR(c->Concatenate(out, c->Vector(c->Dim(iou, -1)), &out));
      c->set_output(0, out);
      c->set_output(1, out);
      return OkStatus();
    })
    .Doc(R"doc(
Anchor/RoI matching from iou (..., G, M) and gt_valid (..., G): matched_gt (..., M) int32
and labels (..., M) int32: 1 positive, 0 negative, -1 ignore. Rules: box_ops_common.h.
)doc");

namespace {

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;
#else
struct GPUDevice;  // tag only; no GPU kernels are instantiated without CUDA
#endif

// (..., rows, cols) -> batch = product of the leading dimensions.
int64_t LeadingProduct(const TensorShape& s) {
  int64_t p = 1;
  for (int i = 0; i + 2 < s.dims(); ++i) p *= s.dim_size(i);
  return p;
}

bool SameLeading(const TensorShape& a, const TensorShape& b) {
  if (a.dims() != b.dims()) return false;
  for (int i = 0; i + 2 < a.dims(); ++i) {
    if (a.dim_size(i) != b.dim_size(i)) return false;
  }
  return true;
}

template <typename Device, typename T>
class BoxPairwiseIouOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& a = ctx->input(0);
    const Tensor& b = ctx->input(1);
    OP_REQUIRES(ctx, a.dims() >= 2 && a.dim_size(a.dims() - 1) == 4,
                errors::InvalidArgument("BoxPairwiseIou: a must be (..., N, 4), got shape ",
                                        a.shape().DebugString()));
    OP_REQUIRES(ctx, b.dims() >= 2 && b.dim_size(b.dims() - 1) == 4,
                errors::InvalidArgument("BoxPairwiseIou: b must be (..., M, 4), got shape ",
                                        b.shape().DebugString()));
    OP_REQUIRES(ctx, SameLeading(a.shape(), b.shape()),
                errors::InvalidArgument("BoxPairwiseIou: a ", a.shape().DebugString(), " and b ",
                                        b.shape().DebugString(),
                                        " must have the same rank and leading dimensions"));
    const int64_t batch = LeadingProduct(a.shape());
    const int64_t n = a.dim_size(a.dims() - 2), m = b.dim_size(b.dims() - 2);
    TensorShape out_shape = a.shape();
    out_shape.set_dim(a.dims() - 1, m);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &out));
    if (out->NumElements() == 0) return;
    Run(ctx, a.flat<T>().data(), b.flat<T>().data(), batch, n, m, out->flat<T>().data());
  }

 private:
  void Run(OpKernelContext* ctx, const T* a, const T* b, int64_t batch, int64_t n, int64_t m,
           T* out);
};

template <typename Device, typename T>
void BoxPairwiseIouOp<Device, T>::Run(OpKernelContext* ctx, const T* a, const T* b,
                                      int64_t batch, int64_t n, int64_t m, T* out) {
  if constexpr (std::is_same<Device, GPUDevice>::value) {
#if GOOGLE_CUDA
    OP_REQUIRES(ctx, batch * n * m < (int64_t{1} << 31),
                errors::InvalidArgument("BoxPairwiseIou: output has more than 2^31 elements"));
    const char* err = mrb::LaunchPairwiseIouGpu<T>(a, b, batch, n, m, out,
                                                   ctx->eigen_gpu_device().stream());
    OP_REQUIRES(ctx, err == nullptr,
                errors::Internal("BoxPairwiseIou CUDA launch failed: ", err));
#endif
    return;
  }
  // One work unit = one row (a box of a) against all of b.
  auto work = [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bi = row / n;
      const T* box = a + 4 * row;
      const T* others = b + 4 * bi * m;
      T* o = out + row * m;
      for (int64_t j = 0; j < m; ++j) o[j] = mrb::BoxIou(box, others + 4 * j);
    }
  };
  const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
  Shard(threads->num_threads, threads->workers, batch * n, 20 * m, work);
}

template <typename Device, typename T>
class BoxMatchOp : public OpKernel {
 public:
  explicit BoxMatchOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pos_iou", &pos_iou_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("neg_iou", &neg_iou_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("allow_low_quality", &allow_low_quality_));
    OP_REQUIRES(ctx, neg_iou_ <= pos_iou_,
                errors::InvalidArgument("BoxMatch: neg_iou (", neg_iou_,
                                        ") must be <= pos_iou (", pos_iou_, ")"));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& iou = ctx->input(0);
    const Tensor& valid = ctx->input(1);
    OP_REQUIRES(ctx, iou.dims() >= 2,
                errors::InvalidArgument("BoxMatch: iou must be (..., G, M), got shape ",
                                        iou.shape().DebugString()));
    TensorShape rows = iou.shape();
    rows.RemoveLastDims(1);
    OP_REQUIRES(ctx, valid.shape() == rows,
                errors::InvalidArgument("BoxMatch: gt_valid must have shape ", rows.DebugString(),
                                        " (iou without its last dimension), got ",
                                        valid.shape().DebugString()));
    const int64_t batch = LeadingProduct(iou.shape());
    const int64_t g = iou.dim_size(iou.dims() - 2), m = iou.dim_size(iou.dims() - 1);
    TensorShape out_shape = iou.shape();
    out_shape.RemoveDim(iou.dims() - 2);
    Tensor *matched = nullptr, *labels = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &matched));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, out_shape, &labels));
    if (matched->NumElements() == 0) return;
    Tensor gt_best;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(DataTypeToEnum<T>::value,
                                           TensorShape({std::max<int64_t>(1, batch * g)}),
                                           &gt_best));
    Run(ctx, iou.flat<T>().data(), valid.flat<bool>().data(), batch, g, m,
        gt_best.flat<T>().data(), matched->flat<int32>().data(), labels->flat<int32>().data());
  }

 private:
  void Run(OpKernelContext* ctx, const T* iou, const bool* valid, int64_t batch, int64_t g,
           int64_t m, T* gt_best, int32* matched, int32* labels) {
    if constexpr (std::is_same<Device, GPUDevice>::value) {
#if GOOGLE_CUDA
      OP_REQUIRES(ctx, batch * g * m < (int64_t{1} << 31),
                  errors::InvalidArgument("BoxMatch: iou has more than 2^31 elements"));
      const char* err = mrb::LaunchMatchGpu<T>(iou, valid, batch, g, m, pos_iou_, neg_iou_,
                                               allow_low_quality_, gt_best, matched, labels,
                                               ctx->eigen_gpu_device().stream());
      OP_REQUIRES(ctx, err == nullptr, errors::Internal("BoxMatch CUDA launch failed: ", err));
#endif
    } else {
      const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
      const float pos = pos_iou_, neg = neg_iou_;
      const bool low_quality = allow_low_quality_;
      if (low_quality && g > 0) {
        // Per ground-truth row: its best IoU over all columns (-1 for invalid rows).
        auto rows = [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            const T* row = iou + r * m;
            T best = T(-1);
            if (valid[r]) {
              for (int64_t j = 0; j < m; ++j) best = row[j] > best ? row[j] : best;
            }
            gt_best[r] = best;
          }
        };
        Shard(threads->num_threads, threads->workers, batch * g, 2 * m, rows);
      }
      // One work unit = one column (anchor or RoI) of one batch item.
      auto cols = [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t bi = k / m, j = k % m;
          mrb::MatchColumn(iou + bi * g * m + j, m, valid + bi * g, gt_best + bi * g, g, pos,
                           neg, low_quality, matched + k, labels + k);
        }
      };
      Shard(threads->num_threads, threads->workers, batch * m, 12 * g + 10, cols);
    }
  }

  float pos_iou_, neg_iou_;
  bool allow_low_quality_;
};

#define REGISTER(DEV, DEVICE, T)                                                           \
  REGISTER_KERNEL_BUILDER(Name("BoxPairwiseIou").Device(DEV).TypeConstraint<T>("T"),     \
                          BoxPairwiseIouOp<DEVICE, T>);                                  \
  REGISTER_KERNEL_BUILDER(Name("BoxMatch").Device(DEV).TypeConstraint<T>("T"),           \
                          BoxMatchOp<DEVICE, T>);
REGISTER(DEVICE_CPU, Eigen::ThreadPoolDevice, float);
REGISTER(DEVICE_CPU, Eigen::ThreadPoolDevice, double);
#if GOOGLE_CUDA
REGISTER(DEVICE_GPU, GPUDevice, float);
REGISTER(DEVICE_GPU, GPUDevice, double);
#endif
#undef REGISTER

}  // namespace
}  // namespace tensorflow
