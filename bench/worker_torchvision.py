"""Benchmark worker for the torchvision peers (imports torch only; run one per configuration).

    python -m bench.worker_torchvision --task=infer --model=maskrcnn --size=800 --detections=100
    python -m bench.worker_torchvision --task=train --model=maskrcnn --size=512
    python -m bench.worker_torchvision --task=stages --model=keypointrcnn --size=800 --detections=100

Models: torchvision ``maskrcnn_resnet50_fpn`` (``num_classes=2``: background + person, like ours)
and ``keypointrcnn_resnet50_fpn`` (``num_keypoints=15``, like ours), random weights
(``weights=None, weights_backbone=None``, so torchvision uses trainable BatchNorm2d), no internal
resize (``min_size = max_size = size`` on a square ``size`` image: scale 1), score threshold 0 and
``box_detections_per_img = detections``; ``torch.set_num_threads(threads)``.

Prints one ``BENCH_RESULT`` JSON line (see :mod:`bench.common`): ``median_s``, ``times_s``,
``peak_rss_mb`` (the process high-water mark, framework included), ``setup_rss_mb`` (after
import + model build), ``num_detections`` of the last run; for ``stages`` a ``stages`` list of
``[name, median seconds]`` in execution order.
"""

from __future__ import annotations

from absl import app, flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "infer", ["infer", "train", "stages"], "what to measure")
flags.DEFINE_enum("model", "maskrcnn", ["maskrcnn", "keypointrcnn"], "torchvision model")
flags.DEFINE_integer("size", 512, "square image size (pixels)")
flags.DEFINE_integer("detections", 100, "detections per image (score threshold 0)")
flags.DEFINE_integer("repeats", 5, "timed runs (median reported)")
flags.DEFINE_integer("warmup", 1, "untimed runs before timing")
flags.DEFINE_integer("threads", 2, "torch.set_num_threads")
flags.DEFINE_integer("people", 3, "ground-truth people in the training image")

NUM_KEYPOINTS = 15


def build(model_name: str, size: int, detections: int):
    """The random-weight torchvision model in eval mode (see module docstring)."""
    import torchvision

    common_kw = dict(
        weights=None,
        weights_backbone=None,
        min_size=size,
        max_size=size,
        box_score_thresh=0.0,
        box_detections_per_img=detections,
    )
    if model_name == "maskrcnn":
        model = torchvision.models.detection.maskrcnn_resnet50_fpn(num_classes=2, **common_kw)
    else:
        model = torchvision.models.detection.keypointrcnn_resnet50_fpn(num_keypoints=NUM_KEYPOINTS, **common_kw)
    return model.eval()


def _image(size: int):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.rand((3, size, size), generator=g)


def bench_infer(model_name, size, detections, repeats, warmup):
    import torch

    model = build(model_name, size, detections)
    image = _image(size)
    mem0 = common.memory_mb()
    last = {}

    def run():
        with torch.inference_mode():
            last["out"] = model([image])[0]

    timing = common.time_runs(run, repeats, warmup)
    out = last["out"]
    return {
        **timing,
        "num_detections": int(out["boxes"].shape[0]),
        "setup_rss_mb": mem0["rss_mb"],
        "output_shapes": {k: list(v.shape) for k, v in out.items()},
    }


def bench_train(model_name, size, repeats, warmup, people):
    import torch

    model = build(model_name, size, 100)
    model.train()
    gt = common.synthetic_people(size, people)
    image = torch.from_numpy(gt["image"]).permute(2, 0, 1).contiguous() / 255.0
    target = {
        "boxes": torch.from_numpy(gt["boxes"]),
        "labels": torch.ones(people, dtype=torch.int64),
        "masks": torch.from_numpy(gt["masks"]),
    }
    if model_name == "keypointrcnn":
        target["keypoints"] = torch.from_numpy(gt["keypoints"])
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    mem0 = common.memory_mb()
    last = {}

    def step():
        losses = model([image], [target])
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        last["loss"] = float(total.detach())

    timing = common.time_runs(step, repeats, warmup)
    return {**timing, "loss": last["loss"], "setup_rss_mb": mem0["rss_mb"]}


def bench_stages(model_name, size, detections, repeats, warmup):
    """Median time of each inference stage, run one after the other on the same inputs."""
    import torch
    from torchvision.models.detection import roi_heads as rh

    model = build(model_name, size, detections)
    heads = model.roi_heads
    image = _image(size)
    state = {}

    def transform():
        state["images"], _ = model.transform([image])

    def backbone():
        state["feats"] = model.backbone(state["images"].tensors)

    def rpn():
        state["proposals"], _ = model.rpn(state["images"], state["feats"])

    def box_head():
        sizes = state["images"].image_sizes
        x = heads.box_head(heads.box_roi_pool(state["feats"], state["proposals"], sizes))
        logits, reg = heads.box_predictor(x)
        boxes, scores, labels = heads.postprocess_detections(logits, reg, state["proposals"], sizes)
        state["det"] = [{"boxes": boxes[0], "scores": scores[0], "labels": labels[0]}]

    def mask_head():
        boxes = [state["det"][0]["boxes"]]
        x = heads.mask_head(heads.mask_roi_pool(state["feats"], boxes, state["images"].image_sizes))
        probs = rh.maskrcnn_inference(heads.mask_predictor(x), [state["det"][0]["labels"]])
        state["det"][0]["masks"] = probs[0]

    def keypoint_head():
        boxes = [state["det"][0]["boxes"]]
        x = heads.keypoint_head(heads.keypoint_roi_pool(state["feats"], boxes, state["images"].image_sizes))
        kps, _ = rh.keypointrcnn_inference(heads.keypoint_predictor(x), boxes)
        state["det"][0]["keypoints"] = kps[0]

    def paste():
        model.transform.postprocess([dict(d) for d in state["det"]], state["images"].image_sizes, [(size, size)])

    stages = [
        ("transform", transform),
        ("backbone+FPN", backbone),
        ("RPN+proposals", rpn),
        ("box RoIAlign+head+postprocess", box_head),
    ]
    stages.append(
        ("mask RoIAlign+head", mask_head)
        if model_name == "maskrcnn"
        else ("keypoint RoIAlign+head+decode", keypoint_head)
    )
    if model_name == "maskrcnn":
        stages.append(("paste masks into image", paste))
    with torch.inference_mode():
        result = [[name, common.time_runs(fn, repeats, warmup)["median_s"]] for name, fn in stages]
    return {
        "stages": result,
        "median_s": sum(t for _, t in result),
        "num_detections": int(state["det"][0]["boxes"].shape[0]),
    }


def main(argv):
    del argv
    import torch

    torch.set_num_threads(FLAGS.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    if FLAGS.task == "infer":
        res = bench_infer(FLAGS.model, FLAGS.size, FLAGS.detections, FLAGS.repeats, FLAGS.warmup)
    elif FLAGS.task == "train":
        res = bench_train(FLAGS.model, FLAGS.size, FLAGS.repeats, FLAGS.warmup, FLAGS.people)
    else:
        res = bench_stages(FLAGS.model, FLAGS.size, FLAGS.detections, FLAGS.repeats, FLAGS.warmup)
    res.update(common.memory_mb())
    res.update(
        {
            "framework": "torch " + torch.__version__,
            "threads": torch.get_num_threads(),
            "task": FLAGS.task,
            "model": FLAGS.model,
            "size": FLAGS.size,
            "detections": FLAGS.detections,
        }
    )
    common.emit(res)


if __name__ == "__main__":
    app.run(main)
