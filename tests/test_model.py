"""Model building, output shapes, tracing, weight round trip and bad input (tiny sizes)."""

import os

# the compiled RoIAlign op is tested by the ops tests; here the pure-TF path (export path) is used
os.environ.setdefault("MASKRCNN_BODY_OPS", "tf")


import numpy as np
import pytest
import tensorflow as tf

from helpers.kernels import convolutions_refuse_empty_batches
from maskrcnn_body import constants
from maskrcnn_body.config import get_config
from maskrcnn_body.model import losses as loss_fns
from maskrcnn_body.model.maskrcnn import InputError, build_model

SIZE = 64


def _cfg(keypoint_head="heatmap", **overrides):
    """cpu_small at SIZE px with few proposals/detections; ``overrides`` are dotted config keys."""
    return get_config(
        "cpu_small",
        **{
            "input.min_size": SIZE,
            "input.max_size": SIZE,
            "model.keypoint_head.kind": keypoint_head,
            "model.rpn.pre_nms_topk_test": 50,
            "model.rpn.post_nms_topk_test": 20,
            "model.postprocess.max_detections": 5,
            "model.postprocess.score_threshold": 0.0,
            **overrides,
        },
    )


@pytest.fixture(scope="module")
def model():
    return build_model(_cfg())


def _images(b=2, size=SIZE, seed=0):
    return tf.random.stateless_uniform((b, size, size, 3), (seed, 1), 0, 255)


def test_detect_shapes_and_ranges(model):
    cfg = model.cfg.model
    out = model.detect(_images(), tf.constant([[SIZE, SIZE], [48, 40]], tf.int32))
    d, m = cfg.postprocess.max_detections, cfg.mask_head.mask_size  # refined by the point head in cpu_small
    assert cfg.mask_head.point.dim > 0 and m == cfg.mask_head.point.refine_sizes[-1]
    assert out["boxes"].shape == (2, d, 4)
    assert out["scores"].shape == (2, d)
    assert out["num_detections"].shape == (2,) and out["num_detections"].dtype == tf.int32
    assert out["masks"].shape == (2, d, m, m, constants.NUM_CHANNELS)
    assert out["keypoints"].shape == (2, d, constants.NUM_KEYPOINTS, 3)
    boxes = out["boxes"].numpy()
    # boxes are clipped to each image's valid size (height 48, width 40 for the second image)
    assert boxes[1, :, [0, 2]].max() <= 40 and boxes[1, :, [1, 3]].max() <= 48
    masks = out["masks"].numpy()
    assert masks.min() >= 0 and masks.max() <= 1
    n = out["num_detections"].numpy()
    for i in range(2):  # rows past num_detections are zero padding
        assert np.all(boxes[i, n[i] :] == 0) and np.all(masks[i, n[i] :] == 0)


def test_regression_keypoint_mode_builds_and_detects():
    model = build_model(_cfg("regression"))
    assert model.keypoint_head.output_shape == (None, constants.NUM_KEYPOINTS, 2)
    out = model.detect(_images(1))
    assert out["keypoints"].shape == (1, 5, constants.NUM_KEYPOINTS, 3)


def test_tf_function_traces_once_per_size(model):
    f = tf.function(model.detect)
    shape = tf.constant([[SIZE, SIZE]], tf.int32)
    a = f(_images(1, seed=1), shape)
    f(_images(1, seed=2), shape)
    assert f.experimental_get_tracing_count() == 1
    b = model.detect(_images(1, seed=1), shape)
    np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), atol=1e-3)


def test_save_load_weights_gives_identical_outputs(model, tmp_path):
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    other = build_model(_cfg())
    x = _images(1, seed=3)
    assert not np.allclose(other.detect(x)["masks"].numpy(), model.detect(x)["masks"].numpy())
    other.load_weights(path)
    a, b = model.detect(x), other.detect(x)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


def test_inference_model_matches_detect(model):
    x = _images(1, seed=4)
    shape = tf.constant([[SIZE, SIZE]], tf.int32)
    a = model.inference_model()([x, shape])
    b = model.detect(x, shape)
    np.testing.assert_allclose(a["masks"].numpy(), b["masks"].numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((0, SIZE, SIZE, 3), np.float32), "empty batch"),
        (np.zeros((1, 60, SIZE, 3), np.float32), "multiples of 32"),
        (np.zeros((1, SIZE, SIZE), np.float32), "(B, H, W, 3)"),
    ],
)
def test_bad_images_raise_clear_errors(model, images, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.detect(images)


def test_nan_image_raises_naming_images(model):
    x = np.zeros((1, SIZE, SIZE, 3), np.float32)
    x[0, 3, 3, 1] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="images contain NaN"):
        model.detect(x)


def test_mask_loss_ignores_unannotated_channels():
    logits = tf.zeros((1, 1, 4, 4, 7))
    target = np.zeros((1, 1, 4, 4, 7), np.float32)
    target[..., 3] = 1.0
    valid = np.ones((1, 1, 7), np.float32)
    full = loss_fns.mask_loss(logits, target, valid).numpy()
    valid[..., 3] = 0
    # every channel has the same BCE at logit 0 (log 2), whatever the target: the value is log 2 either way
    np.testing.assert_allclose(full, np.log(2), rtol=1e-5)
    # a confident wrong prediction on an unannotated channel costs nothing
    wrong = np.zeros((1, 1, 4, 4, 7), np.float32)
    wrong[..., 3] = -20.0
    np.testing.assert_allclose(loss_fns.mask_loss(wrong, target, valid).numpy(), np.log(2), rtol=1e-5)
    valid[..., 3] = 1
    assert loss_fns.mask_loss(wrong, target, valid).numpy() > 2


def test_losses_are_finite_with_no_positives():
    z = tf.zeros
    cls, box = loss_fns.rpn_losses(z((1, 8)), z((1, 8, 4)), -tf.ones((1, 8), tf.int32), z((1, 8, 4)))
    assert np.isfinite(cls.numpy()) and cls.numpy() == 0 and box.numpy() == 0
    assert loss_fns.mask_loss(z((1, 2, 4, 4, 7)), z((1, 2, 4, 4, 7)), z((1, 2, 7))).numpy() == 0
    heatmap_loss = loss_fns.keypoint_heatmap_loss(z((1, 2, 4, 4, 15)), tf.zeros((1, 2, 15), tf.int32), z((1, 2, 15)))
    assert heatmap_loss.numpy() == 0


def test_keypoint_heatmap_loss_prefers_the_target_cell():
    logits = np.zeros((1, 1, 4, 4, 15), np.float32)
    logits[0, 0, 2, 1, :] = 10.0  # cell row 2, col 1 -> flat index 9
    w = np.ones((1, 1, 15), np.float32)
    good = loss_fns.keypoint_heatmap_loss(logits, np.full((1, 1, 15), 9, np.int32), w).numpy()
    bad = loss_fns.keypoint_heatmap_loss(logits, np.full((1, 1, 15), 0, np.int32), w).numpy()
    assert good < 1e-3 < 5 < bad


def _hand_batch(num_gt, box):
    """One 64x64 image with a bright 'person' rectangle; GT row 0 = ``box``."""
    img = np.zeros((1, SIZE, SIZE, 3), np.float32)
    img[0, 10:50, 20:40] = 200.0
    boxes = np.zeros((1, 3, 4), np.float32)
    boxes[0, 0] = box
    kps = np.zeros((1, 3, 15, 3), np.float32)
    kps[0, 0, :, :2] = [30.0, 30.0]
    kps[0, 0, :, 2] = 2
    return {
        "images": img,
        "image_shape": np.array([[SIZE, SIZE]], np.int32),
        "num_gt": np.array([num_gt], np.int32),
        "gt_boxes": boxes,
        "gt_masks": np.ones((1, 3, 16, 16, 7), np.float32),
        "gt_parts_valid": np.ones((1, 3, 7), np.float32),
        "gt_keypoints": kps,
    }


def test_losses_with_people_are_positive_and_finite(model):
    losses = model.compute_losses(_hand_batch(1, [20, 10, 40, 50]))
    assert set(losses) == {"rpn_class", "rpn_box", "class", "box", "mask", "keypoint", "point", "total"}
    for k, v in losses.items():
        assert v.dtype == tf.float32 and v.shape == () and np.isfinite(v.numpy()), k
    # the GT box is added to the RoIs, so there are always positives for the mask/keypoint heads
    assert losses["mask"].numpy() > 0.1 and losses["keypoint"].numpy() > 0.1
    assert losses["point"].numpy() > 0.1
    w = model.cfg.model.loss_weights
    point = w["mask"] * model.cfg.model.mask_head.point.loss_weight * losses["point"].numpy()
    np.testing.assert_allclose(losses["total"].numpy(), sum(w[k] * losses[k].numpy() for k in w) + point, rtol=1e-5)


@pytest.mark.parametrize("num_gt, box", [(0, [0, 0, 0, 0]), (1, [30, 30, 30, 45])], ids=["no_people", "zero_area_box"])
def test_losses_defined_without_usable_people(model, num_gt, box):
    # as on an Intel Xeon (oneDNN): a convolution on an empty batch fails, so the heads must not
    # be run on zero rows when nothing is positive
    with convolutions_refuse_empty_batches():
        losses = {k: v.numpy() for k, v in model.compute_losses(_hand_batch(num_gt, box)).items()}
    assert all(np.isfinite(v) for v in losses.values()), losses
    # nothing to match: no positive anchors/RoIs, so the box/mask/keypoint terms are exactly 0
    for k in ("rpn_box", "box", "mask", "keypoint", "point"):
        assert losses[k] == 0, (k, losses)
    assert losses["rpn_class"] > 0 and losses["class"] > 0


def test_losses_reject_nan_and_missing_keys(model):
    batch = _hand_batch(1, [20, 10, 40, 50])
    batch["images"][0, 1, 1, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="contains NaN"):
        model.compute_losses(batch)
    del batch["gt_masks"]
    with pytest.raises(InputError, match="gt_masks"):
        model.compute_losses(batch)


def test_legacy_preset_builds_the_original_heads():
    """The 2017 hyper-parameters: 56x56 mask crops -> 112x112x7 masks, 30-output keypoint regression,
    3 scales x 3 ratios per level."""
    model = build_model(get_config("legacy"))
    assert model.point_head is None  # the original had no mask refinement
    assert model.mask_head.input_shape == (None, 56, 56, 256)
    assert model.mask_head.output_shape == (None, 112, 112, constants.NUM_CHANNELS)
    assert model.keypoint_head.output_shape == (None, constants.NUM_KEYPOINTS, 2)
    assert model.rpn_head.output_shape[0][-1] == 9


@pytest.mark.parametrize(
    "name, widths",
    [("resnet18", (64, 128, 256, 512)), ("tiny", (32, 64, 128, 256)), ("resnet50", (256, 512, 1024, 2048))],
)
def test_backbones_give_c2_to_c5_at_strides_4_to_32(name, widths):
    from maskrcnn_body.model.backbone import build_backbone

    cfg = get_config("cpu_small", **{"model.backbone.name": name}).model.backbone
    from maskrcnn_body.model.norm import valid_sizes

    feats = build_backbone(cfg)([tf.zeros((1, 64, 96, 3)), valid_sizes([[64, 96]], (64, 96))])
    assert [tuple(f.shape) for f in feats] == [(1, 64 // s, 96 // s, c) for s, c in zip((4, 8, 16, 32), widths)]


def test_resnet18_model_trains_and_detects():
    model = build_model(_cfg(**{"model.backbone.name": "resnet18"}))
    out = model.detect(_images())
    assert out["boxes"].shape == (2, 5, 4)
    losses = model.compute_losses(_hand_batch(1, [20, 10, 40, 50]))
    assert np.isfinite(losses["total"].numpy())
