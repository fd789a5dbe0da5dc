// MultilevelRoiAlign and MultilevelRoiAlignGrad: op registration, shape functions,
// input validation and the multithreaded CPU kernels (GPU kernels in
// roi_align_gpu.cu.cc, registered here when built with GOOGLE_CUDA).
// Semantics: roi_align_common.h and docs/DESIGN.md "Ops".
#include <algorithm>
#include <vector>

#include "roi_align_common.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#if GOOGLE_CUDA
#include "roi_align_gpu.h"
#endif

namespace tensorflow {
namespace {

using shape_inference::DimensionHandle;
using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

// Shared shape checks: features N x (B, H, W, C), boxes (B, R, 4), levels (B, R).
// Sets *batch, *num_rois, *channels (possibly unknown).
Status CheckInputShapes(InferenceContext* c, int n, DimensionHandle* batch,
                        DimensionHandle* num_rois, DimensionHandle* channels) {
  ShapeHandle f;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &f));
  *batch = c->Dim(f, 0);
  *channels = c->Dim(f, 3);
  for (int i = 1; i < n; ++i) {
    TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 4, &f));
    TF_RETURN_IF_ERROR(c->Merge(*batch, c->Dim(f, 0), batch));
    TF_RETURN_IF_ERROR(c->Merge(*channels, c->Dim(f, 3), channels));
  }
  ShapeHandle boxes, levels;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(n), 3, &boxes));
  DimensionHandle unused;
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(boxes, 2), 4, &unused));
  TF_RETURN_IF_ERROR(c->Merge(*batch, c->Dim(boxes, 0), batch));
  *num_rois = c->Dim(boxes, 1);
  TF_RETURN_IF_ERROR(c->WithRank(c->input(n + 1), 2, &levels));
  TF_RETURN_IF_ERROR(c->Merge(*batch, c->Dim(levels, 0), batch));
  TF_RETURN_IF_ERROR(c->Merge(*num_rois, c->Dim(levels, 1), num_rois));
  return OkStatus();
}

Status CheckStrides(InferenceContext* c, int n) {
  std::vector<int> strides;
  TF_RETURN_IF_ERROR(c->GetAttr("strides", &strides));
  if (static_cast<int>(strides.size()) != n) {
    return errors::InvalidArgument("MultilevelRoiAlign: got ", n, " feature levels but ",
                                   strides.size(), " strides; pass one stride per level");
  }
  return OkStatus();
}

}  // namespace

REGISTER_OP("MultilevelRoiAlign")
    .Input("features: N * T")
    .Input("boxes: T")
    .Input("levels: int32")
    .Output("output: T")
    .Attr("T: {float, double}")
    .Attr("N: int >= 1")
    .Attr("strides: list(int)")
    .Attr("output_height: int >= 1")
    .Attr("output_width: int >= 1")
    .Attr("sampling_ratio: int >= 1 = 2")
    .Attr("aligned: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      int n;
      TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
      TF_RETURN_IF_ERROR(CheckStrides(c, n));
      int out_h, out_w;
      TF_RETURN_IF_ERROR(c->GetAttr("output_height", &out_h));
      TF_RETURN_IF_ERROR(c->GetAttr("output_width", &out_w));
      DimensionHandle batch, num_rois, channels;
      TF_RETURN_IF_ERROR(CheckInputShapes(c, n, &batch, &num_rois, &channels));
      c->set_output(0, c->MakeShape({batch, num_rois, out_h, out_w, channels}));
      return OkStatus();
    })
    .Doc(R"doc(
Multilevel RoIAlign (NHWC). features: N tensors (B, H_l, W_l, C); boxes (B, R, 4)
x1,y1,x2,y2 in image pixels; levels (B, R) int32 index into features; strides: one
per level. Output (B, R, output_height, output_width, C). See docs/DESIGN.md "Ops".
)doc");

REGISTER_OP("MultilevelRoiAlignGrad")
    .Input("features: N * T")
    .Input("boxes: T")
    .Input("levels: int32")
    .Input("grad: T")
    .Output("grads: N * T")
    .Attr("T: {float, double}")
    .Attr("N: int >= 1")
    .Attr("strides: list(int)")
    .Attr("output_height: int >= 1")
    .Attr("output_width: int >= 1")
    .Attr("sampling_ratio: int >= 1 = 2")
    .Attr("aligned: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      int n;
      TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
      TF_RETURN_IF_ERROR(CheckStrides(c, n));
      DimensionHandle batch, num_rois, channels;
      TF_RETURN_IF_ERROR(CheckInputShapes(c, n, &batch, &num_rois, &channels));
      ShapeHandle grad;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(n + 2), 5, &grad));
      for (int i = 0; i < n; ++i) c->set_output(i, c->input(i));
      return OkStatus();
    })
    .Doc(R"doc(
Gradient of MultilevelRoiAlign with respect to its features (only their shapes are
read). grad: (B, R, output_height, output_width, C). Outputs one gradient per level.
)doc");

namespace {

// Attributes and validated inputs common to the forward and gradient kernels.
class RoiAlignBase : public OpKernel {
 public:
  explicit RoiAlignBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_height", &out_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_width", &out_w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("sampling_ratio", &sampling_ratio_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("aligned", &aligned_));
    OP_REQUIRES(ctx, out_h_ >= 1 && out_w_ >= 1,
                errors::InvalidArgument("MultilevelRoiAlign: output size must be >= 1, got ",
                                        out_h_, " x ", out_w_));
    OP_REQUIRES(ctx, sampling_ratio_ >= 1,
                errors::InvalidArgument(
                    "MultilevelRoiAlign: sampling_ratio must be >= 1 (adaptive sampling is "
                    "not supported), got ",
                    sampling_ratio_));
    OP_REQUIRES(ctx, !strides_.empty() && strides_.size() <= mrb::kMaxLevels,
                errors::InvalidArgument("MultilevelRoiAlign: between 1 and ", mrb::kMaxLevels,
                                        " levels are supported, got ", strides_.size()));
    for (size_t i = 0; i < strides_.size(); ++i) {
      OP_REQUIRES(ctx, strides_[i] > 0,
                  errors::InvalidArgument("MultilevelRoiAlign: strides[", i,
                                          "] must be > 0, got ", strides_[i]));
    }
  }

 protected:
  // Inputs of the gradient op (features..., boxes, levels, grad), validated like the forward
  // op's plus grad's shape (B, R, out_h, out_w, C). Check ctx->status() afterwards.
  void ReadGradInputs(OpKernelContext* ctx, OpInputList* features, const Tensor** boxes,
                      const Tensor** levels, const Tensor** grad) {
    OP_REQUIRES_OK(ctx, ctx->input_list("features", features));
    const int n = features->size();
    *boxes = &ctx->input(n);
    *levels = &ctx->input(n + 1);
    *grad = &ctx->input(n + 2);
    ValidateInputs(ctx, *features, **boxes, **levels);
    if (!ctx->status().ok()) return;
    const TensorShape want({batch_, num_rois_, out_h_, out_w_, channels_});
    OP_REQUIRES(ctx, (*grad)->shape() == want,
                errors::InvalidArgument("MultilevelRoiAlignGrad: grad must have shape ",
                                        want.DebugString(), ", got ",
                                        (*grad)->shape().DebugString()));
  }

  // Checks features/boxes/levels; fills batch_, num_rois_, channels_.
  void ValidateInputs(OpKernelContext* ctx, const OpInputList& features, const Tensor& boxes,
                      const Tensor& levels) {
    const int n = features.size();
    OP_REQUIRES(ctx, n == static_cast<int>(strides_.size()),
                errors::InvalidArgument("MultilevelRoiAlign: got ", n, " feature levels but ",
                                        strides_.size(), " strides"));
    for (int i = 0; i < n; ++i) {
      const Tensor& f = features[i];
      OP_REQUIRES(ctx, f.dims() == 4,
                  errors::InvalidArgument("MultilevelRoiAlign: features[", i,
                                          "] must be (B, H, W, C), got shape ",
                                          f.shape().DebugString()));
      OP_REQUIRES(ctx, f.dim_size(1) >= 1 && f.dim_size(2) >= 1,
                  errors::InvalidArgument("MultilevelRoiAlign: features[", i,
                                          "] has an empty spatial size ",
                                          f.shape().DebugString()));
      OP_REQUIRES(ctx, f.NumElements() < (int64_t{1} << 31),
                  errors::InvalidArgument("MultilevelRoiAlign: features[", i,
                                          "] has more than 2^31 elements"));
      if (i > 0) {
        OP_REQUIRES(ctx,
                    f.dim_size(0) == features[0].dim_size(0) &&
                        f.dim_size(3) == features[0].dim_size(3),
                    errors::InvalidArgument(
                        "MultilevelRoiAlign: features[", i, "] shape ", f.shape().DebugString(),
                        " disagrees with features[0] ", features[0].shape().DebugString(),
                        " in batch or channels"));
      }
    }
    batch_ = features[0].dim_size(0);
    channels_ = features[0].dim_size(3);
    OP_REQUIRES(ctx, boxes.dims() == 3 && boxes.dim_size(2) == 4 && boxes.dim_size(0) == batch_,
                errors::InvalidArgument("MultilevelRoiAlign: boxes must be (B=", batch_,
                                        ", R, 4), got shape ", boxes.shape().DebugString()));
    num_rois_ = boxes.dim_size(1);
    OP_REQUIRES(ctx,
                levels.dims() == 2 && levels.dim_size(0) == batch_ &&
                    levels.dim_size(1) == num_rois_,
                errors::InvalidArgument("MultilevelRoiAlign: levels must be (B, R) = (", batch_,
                                        ", ", num_rois_, "), got shape ",
                                        levels.shape().DebugString()));
  }

  // CPU only: every level index must be in [0, N).
  void ValidateLevelValues(OpKernelContext* ctx, const Tensor& levels, int n) {
    const auto lv = levels.flat<int32>();
    for (int64_t i = 0; i < lv.size(); ++i) {
      OP_REQUIRES(ctx, lv(i) >= 0 && lv(i) < n,
                  errors::InvalidArgument("MultilevelRoiAlign: levels[", i / num_rois_, ", ",
                                          i % num_rois_, "] = ", lv(i), " is out of range [0, ",
                                          n, ")"));
    }
  }

  template <typename P>
  mrb::LevelTable<P> MakeTable(const OpInputList& features, const std::vector<P>& data) const {
    mrb::LevelTable<P> t{};
    t.num_levels = features.size();
    for (int i = 0; i < t.num_levels; ++i) {
      t.data[i] = data[i];
      t.height[i] = features[i].dim_size(1);
      t.width[i] = features[i].dim_size(2);
      t.inv_stride[i] = 1.0f / static_cast<float>(strides_[i]);
    }
    return t;
  }

  std::vector<int> strides_;
  int out_h_, out_w_;
  int sampling_ratio_;
  bool aligned_;
  int64_t batch_ = 0, num_rois_ = 0, channels_ = 0;
};

// Sample tables of one RoI: per axis, output_size * sampling_ratio samples.
template <typename T>
struct RoiSamples {
  std::vector<mrb::AxisSample<T>> y, x;

  void Fill(const T* box, float inv_stride, int height, int width, bool aligned, int out_h,
            int out_w, int sr) {
    const auto gy = mrb::MakeAxisGeometry<T>(box[1], box[3], inv_stride, aligned, out_h);
    const auto gx = mrb::MakeAxisGeometry<T>(box[0], box[2], inv_stride, aligned, out_w);
    y.resize(out_h * sr);
    x.resize(out_w * sr);
    for (int i = 0; i < out_h; ++i) {
      for (int j = 0; j < sr; ++j) {
        y[i * sr + j] = mrb::MakeAxisSample<T>(mrb::SampleCoord(gy, i, j, sr), height);
      }
    }
    for (int i = 0; i < out_w; ++i) {
      for (int j = 0; j < sr; ++j) {
        x[i * sr + j] = mrb::MakeAxisSample<T>(mrb::SampleCoord(gx, i, j, sr), width);
      }
    }
  }
};

template <typename Device, typename T>
class MultilevelRoiAlignOp;

template <typename T>
class MultilevelRoiAlignOp<Eigen::ThreadPoolDevice, T> : public RoiAlignBase {
 public:
  using RoiAlignBase::RoiAlignBase;

  void Compute(OpKernelContext* ctx) override {
    OpInputList features;
    OP_REQUIRES_OK(ctx, ctx->input_list("features", &features));
    const Tensor& boxes = ctx->input(features.size());
    const Tensor& levels = ctx->input(features.size() + 1);
    ValidateInputs(ctx, features, boxes, levels);
    if (!ctx->status().ok()) return;
    ValidateLevelValues(ctx, levels, features.size());
    if (!ctx->status().ok()) return;
    const int oh = out_h_, ow = out_w_, sr = sampling_ratio_;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({batch_, num_rois_, oh, ow, channels_}), &output));
    if (output->NumElements() == 0) return;

    std::vector<const T*> data;
    for (int i = 0; i < features.size(); ++i) data.push_back(features[i].flat<T>().data());
    const auto table = MakeTable(features, data);
    const T* box_data = boxes.flat<T>().data();
    const int32* level_data = levels.flat<int32>().data();
    T* out = output->flat<T>().data();
    const int64_t c = channels_, num_rois = num_rois_;
    const bool aligned = aligned_;
    const T inv_count = T(1) / static_cast<T>(sr * sr);

    // One work unit = one RoI: all its S x S bins and C channels.
    auto work = [&](int64_t begin, int64_t end) {
      RoiSamples<T> samples;
      for (int64_t k = begin; k < end; ++k) {
        const int64_t b = k / num_rois;
        const int l = level_data[k];
        const int h = table.height[l], w = table.width[l];
        samples.Fill(box_data + 4 * k, table.inv_stride[l], h, w, aligned, oh, ow, sr);
        const T* f = table.data[l] + b * h * w * c;
        T* o = out + k * oh * ow * c;
        for (int ph = 0; ph < oh; ++ph) {
          for (int pw = 0; pw < ow; ++pw, o += c) {
            std::fill(o, o + c, T(0));
            for (int iy = 0; iy < sr; ++iy) {
              const auto& sy = samples.y[ph * sr + iy];
              if (sy.w_lo == T(0) && sy.w_hi == T(0)) continue;
              const T* row_lo = f + static_cast<int64_t>(sy.lo) * w * c;
              const T* row_hi = f + static_cast<int64_t>(sy.hi) * w * c;
              for (int ix = 0; ix < sr; ++ix) {
                const auto& sx = samples.x[pw * sr + ix];
                const T w1 = sy.w_lo * sx.w_lo * inv_count, w2 = sy.w_lo * sx.w_hi * inv_count;
                const T w3 = sy.w_hi * sx.w_lo * inv_count, w4 = sy.w_hi * sx.w_hi * inv_count;
                const T* p1 = row_lo + sx.lo * c;
                const T* p2 = row_lo + sx.hi * c;
                const T* p3 = row_hi + sx.lo * c;
                const T* p4 = row_hi + sx.hi * c;
                for (int64_t ch = 0; ch < c; ++ch) {
                  o[ch] += w1 * p1[ch] + w2 * p2[ch] + w3 * p3[ch] + w4 * p4[ch];
                }
              }
            }
          }
        }
      }
    };
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t cost = static_cast<int64_t>(oh) * ow * sr * sr * (8 * c + 40);
    Shard(threads->num_threads, threads->workers, batch_ * num_rois_, cost, work);
  }
};

template <typename Device, typename T>
class MultilevelRoiAlignGradOp;

template <typename T>
class MultilevelRoiAlignGradOp<Eigen::ThreadPoolDevice, T> : public RoiAlignBase {
 public:
  using RoiAlignBase::RoiAlignBase;

  void Compute(OpKernelContext* ctx) override {
    OpInputList features;
    const Tensor *boxes_in = nullptr, *levels_in = nullptr, *grad_in = nullptr;
    ReadGradInputs(ctx, &features, &boxes_in, &levels_in, &grad_in);
    if (!ctx->status().ok()) return;
    const Tensor& boxes = *boxes_in;
    const Tensor& levels = *levels_in;
    const Tensor& grad = *grad_in;
    const int n = features.size();
    const int oh = out_h_, ow = out_w_, sr = sampling_ratio_;
    ValidateLevelValues(ctx, levels, n);
    if (!ctx->status().ok()) return;

    OpOutputList outputs;
    OP_REQUIRES_OK(ctx, ctx->output_list("grads", &outputs));
    std::vector<T*> data;
    const auto& device = ctx->eigen_device<Eigen::ThreadPoolDevice>();
    for (int i = 0; i < n; ++i) {
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, outputs.allocate(i, features[i].shape(), &out));
      out->flat<T>().device(device) = out->flat<T>().constant(T(0));
      data.push_back(out->flat<T>().data());
    }
    if (grad.NumElements() == 0) return;
    const auto table = MakeTable(features, data);
    const T* box_data = boxes.flat<T>().data();
    const int32* level_data = levels.flat<int32>().data();
    const T* g = grad.flat<T>().data();
    const int64_t c = channels_, num_rois = num_rois_;
    const bool aligned = aligned_;
    const T inv_count = T(1) / static_cast<T>(sr * sr);

    // Race-free scatter: one work unit = (image b, block of channels); units never
    // write the same gradient element, and each RoI's samples are accumulated in order,
    // so the result is deterministic.
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t want_blocks = std::max<int64_t>(1, (4 * threads->num_threads + batch_ - 1) / batch_);
    int64_t block = (c + want_blocks - 1) / want_blocks;
    block = std::min<int64_t>(c, std::max<int64_t>(16, (block + 15) / 16 * 16));
    const int64_t num_blocks = (c + block - 1) / block;

    auto work = [&](int64_t begin, int64_t end) {
      RoiSamples<T> samples;
      for (int64_t unit = begin; unit < end; ++unit) {
        const int64_t b = unit / num_blocks;
        const int64_t c0 = (unit % num_blocks) * block;
        const int64_t nc = std::min(block, c - c0);
        for (int64_t r = 0; r < num_rois; ++r) {
          const int64_t k = b * num_rois + r;
          const int l = level_data[k];
          const int h = table.height[l], w = table.width[l];
          samples.Fill(box_data + 4 * k, table.inv_stride[l], h, w, aligned, oh, ow, sr);
          T* f = table.data[l] + b * h * w * c + c0;
          const T* go = g + k * oh * ow * c + c0;
          for (int ph = 0; ph < oh; ++ph) {
            for (int pw = 0; pw < ow; ++pw, go += c) {
              for (int iy = 0; iy < sr; ++iy) {
                const auto& sy = samples.y[ph * sr + iy];
                if (sy.w_lo == T(0) && sy.w_hi == T(0)) continue;
                T* row_lo = f + static_cast<int64_t>(sy.lo) * w * c;
                T* row_hi = f + static_cast<int64_t>(sy.hi) * w * c;
                for (int ix = 0; ix < sr; ++ix) {
                  const auto& sx = samples.x[pw * sr + ix];
                  const T w1 = sy.w_lo * sx.w_lo * inv_count, w2 = sy.w_lo * sx.w_hi * inv_count;
                  const T w3 = sy.w_hi * sx.w_lo * inv_count, w4 = sy.w_hi * sx.w_hi * inv_count;
                  T* p1 = row_lo + sx.lo * c;
                  T* p2 = row_lo + sx.hi * c;
                  T* p3 = row_hi + sx.lo * c;
                  T* p4 = row_hi + sx.hi * c;
                  for (int64_t ch = 0; ch < nc; ++ch) {
                    const T v = go[ch];
                    p1[ch] += w1 * v;
                    p2[ch] += w2 * v;
                    p3[ch] += w3 * v;
                    p4[ch] += w4 * v;
                  }
                }
              }
            }
          }
        }
      }
    };
    const int64_t cost = num_rois_ * oh * ow * sr * sr * (8 * block + 40);
    Shard(threads->num_threads, threads->workers, batch_ * num_blocks, cost, work);
  }
};

#define REGISTER_CPU(T)                                                               \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("MultilevelRoiAlign").Device(DEVICE_CPU).TypeConstraint<T>("T"),           \
      MultilevelRoiAlignOp<Eigen::ThreadPoolDevice, T>);                              \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("MultilevelRoiAlignGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"),       \
      MultilevelRoiAlignGradOp<Eigen::ThreadPoolDevice, T>);
REGISTER_CPU(float);
REGISTER_CPU(double);
#undef REGISTER_CPU

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;

template <typename T>
class MultilevelRoiAlignOp<GPUDevice, T> : public RoiAlignBase {
 public:
  using RoiAlignBase::RoiAlignBase;

  void Compute(OpKernelContext* ctx) override {
    OpInputList features;
    OP_REQUIRES_OK(ctx, ctx->input_list("features", &features));
    const Tensor& boxes = ctx->input(features.size());
    const Tensor& levels = ctx->input(features.size() + 1);
    ValidateInputs(ctx, features, boxes, levels);
    if (!ctx->status().ok()) return;
    const int oh = out_h_, ow = out_w_;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({batch_, num_rois_, oh, ow, channels_}), &output));
    if (output->NumElements() == 0) return;
    std::vector<const T*> data;
    for (int i = 0; i < features.size(); ++i) data.push_back(features[i].flat<T>().data());
    const char* err = mrb::LaunchRoiAlignForwardGpu<T>(
        MakeTable(features, data), boxes.flat<T>().data(), levels.flat<int32>().data(),
        batch_, num_rois_, channels_, oh, ow, sampling_ratio_, aligned_, output->flat<T>().data(),
        ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, err == nullptr,
                errors::Internal("MultilevelRoiAlign CUDA launch failed: ", err));
  }
};

template <typename T>
class MultilevelRoiAlignGradOp<GPUDevice, T> : public RoiAlignBase {
 public:
  using RoiAlignBase::RoiAlignBase;

  void Compute(OpKernelContext* ctx) override {
    OpInputList features;
    const Tensor *boxes_in = nullptr, *levels_in = nullptr, *grad_in = nullptr;
    ReadGradInputs(ctx, &features, &boxes_in, &levels_in, &grad_in);
    if (!ctx->status().ok()) return;
    const Tensor& boxes = *boxes_in;
    const Tensor& levels = *levels_in;
    const Tensor& grad = *grad_in;
    const int n = features.size();
    const int oh = out_h_, ow = out_w_;
    OpOutputList outputs;
    OP_REQUIRES_OK(ctx, ctx->output_list("grads", &outputs));
    std::vector<T*> data;
    for (int i = 0; i < n; ++i) {
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, outputs.allocate(i, features[i].shape(), &out));
      data.push_back(out->flat<T>().data());
    }
    const char* err = mrb::LaunchRoiAlignBackwardGpu<T>(
        MakeTable(features, data), boxes.flat<T>().data(), levels.flat<int32>().data(),
        batch_, num_rois_, channels_, oh, ow, sampling_ratio_, aligned_, grad.flat<T>().data(),
        ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, err == nullptr,
                errors::Internal("MultilevelRoiAlignGrad CUDA launch failed: ", err));
  }
};

#define REGISTER_GPU(T)                                                               \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("MultilevelRoiAlign").Device(DEVICE_GPU).TypeConstraint<T>("T"),           \
      MultilevelRoiAlignOp<GPUDevice, T>);                                            \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("MultilevelRoiAlignGrad").Device(DEVICE_GPU).TypeConstraint<T>("T"),       \
      MultilevelRoiAlignGradOp<GPUDevice, T>);
REGISTER_GPU(float);
REGISTER_GPU(double);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace
}  // namespace tensorflow
