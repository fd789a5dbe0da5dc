"""The tiny-size fine-tuning recipe shared by the end-to-end tests (docs/TRAINING.md): the ``--set`` overrides
that shrink ``r50_fpn_imagenet`` to a few seconds a step on a CPU, a stand-in ImageNet weights file and a
script runner."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHRINK = [
    "--set",
    "input.min_size=128",
    "--set",
    "input.max_size=160",
    "--set",
    "input.max_persons=4",
    "--set",
    "input.gt_mask_size=32",
    "--set",
    "model.rpn.pre_nms_topk_train=200",
    "--set",
    "model.rpn.post_nms_topk_train=50",
    "--set",
    "model.rpn.pre_nms_topk_test=100",
    "--set",
    "model.rpn.post_nms_topk_test=20",
    "--set",
    "model.roi.per_image=32",
    "--set",
    "model.mask_head.max_rois_per_image=4",
    "--set",
    "model.mask_head.output_size=28",
    "--set",
    "model.keypoint_head.heatmap_size=28",
    "--set",
    "model.postprocess.max_detections=5",
    "--set",
    "model.postprocess.score_threshold=0",
]


def run_script(args, cwd):
    """Runs ``python ARGS`` in ``cwd``; asserts exit code 0 and returns stdout."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{args[0]}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def imagenet_standin(path) -> str:
    """Writes a Keras ResNet-50 (no top, random weights, seed 0) weights file standing in for the ImageNet
    download at ``path``; returns it."""
    import keras

    keras.utils.set_random_seed(0)
    keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(path)
    return str(path)
