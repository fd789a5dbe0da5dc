"""model/fold.py: frozen BatchNorm folded into the convolutions (and the exports that fold).

The models have random weights and random, non-trivial BatchNorm statistics (gamma in [0.5, 1.5], beta and
mean ~ N(0, 0.2), variance in [0.5, 2]), so a wrong fold changes the outputs far beyond the tolerances:

* one conv + BatchNorm (with and without bias, scale, centre): 1e-5 relative to the output's largest value.
* ``r50_fpn_imagenet`` (weights=None) at 128 px on a synthetic image: backbone C2..C5 and FPN P2..P6 within
  1e-5 of their largest value (measured 1.7e-6 to 2.1e-6: 1.8e-4 on P2 values up to 111); detections: the same
  scores to 1e-5 (measured 0) in the same order, boxes and keypoint x/y 1e-2 px (measured 1.7e-4 px), keypoint
  scores 1e-4, masks 1e-4 (``assert_masks_close``: the point head may swap a few near-tied cells; measured: 0.006%
  of the values differ by more, by at most 0.02).
* exports of a frozen-BatchNorm ``cpu_small`` (tiny backbone, convolutions without bias) vs the unfolded
  Keras model: the test_export.py / test_backends.py tolerances (boxes 1e-2 px, scores 1e-4, masks 1e-4).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.masks import assert_masks_close
from maskrcnn_body.config import get_config
from maskrcnn_body.data.synthetic import render_image
from maskrcnn_body.inference.backends import trim
from maskrcnn_body.model.fold import fold_conv_bn, fold_frozen_batchnorm, fold_functional, frozen_batchnorm_layers
from maskrcnn_body.model.maskrcnn import PARTS, build_model
from maskrcnn_body.model.norm import FrozenBatchNormalization

SMALL = {
    "input.min_size": 128,
    "input.max_size": 128,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}


def _randomise_batchnorm(model, seed: int = 0) -> int:
    """Random, non-trivial statistics and affine parameters in every frozen BatchNorm; returns how many."""
    rng = np.random.default_rng(seed)
    draw = {
        "gamma": lambda n: rng.uniform(0.5, 1.5, n),
        "beta": lambda n: rng.normal(0.0, 0.2, n),
        "moving_mean": lambda n: rng.normal(0.0, 0.2, n),
        "moving_variance": lambda n: rng.uniform(0.5, 2.0, n),
    }
    layers = frozen_batchnorm_layers(model)
    for layer in layers:
        layer.set_weights([draw[w.name](w.shape[0]) for w in layer.weights])
    return len(layers)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _image(h: int, w: int, index: int = 0) -> np.ndarray:
    return render_image(seed=3, split="val", index=index, height=h, width=w).decode_image()


def _assert_close(actual, desired, rel=1e-5):
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape
    worst = float(np.abs(actual - desired).max())
    assert worst <= rel * float(np.abs(desired).max()), (worst, float(np.abs(desired).max()))


@pytest.mark.parametrize("use_bias,scale,center", [(True, True, True), (False, True, True), (False, False, False)])
def test_one_conv_and_batchnorm_fold_into_one_conv(use_bias, scale, center):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 5))
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=use_bias, name="c")(inputs)
    y = FrozenBatchNormalization(epsilon=1e-3, scale=scale, center=center, name="bn")(y)
    model = keras.Model(inputs, keras.layers.Activation("relu")(y))
    _randomise_batchnorm(model)
    if use_bias:
        model.get_layer("c").bias.assign(np.random.default_rng(2).normal(0, 1, 8))
    folded = fold_functional(model)
    assert not frozen_batchnorm_layers(folded) and len(_convs(folded)) == 1
    conv = _convs(folded)[0]
    assert conv.use_bias and conv.name == "c" and conv is not model.get_layer("c")
    x = np.random.default_rng(3).normal(0, 1, (2, 12, 10, 5)).astype(np.float32)
    _assert_close(folded(x), model(x))
    assert np.abs(np.asarray(model(x))).max() > 0.1


def test_the_folded_model_shares_nothing_with_the_original():
    """Rebuilt from the config: the original's layers and variables can be freed (no graph node of the
    folded model points at them), and the folded weights are copies."""
    import gc
    import weakref

    from maskrcnn_body.model.backbone import build_backbone

    cfg = get_config("cpu_small", **{"model.backbone.norm": "frozen_bn"})
    backbone = build_backbone(cfg.model.backbone)
    _randomise_batchnorm(backbone)
    x = np.random.default_rng(0).normal(0, 50, (1, 64, 96, 3)).astype(np.float32)
    x = [x, np.array([[64, 96, 64, 96]], np.int32)]  # the image and its valid sizes (no padding)
    expected = [np.asarray(t) for t in backbone(x)]
    gone = [weakref.ref(backbone.get_layer(name)) for name in ("conv1a_conv", "conv1a_bn", "conv1a_relu")]
    folded = fold_functional(backbone)
    assert {layer.name for layer in folded.layers} == {
        layer.name for layer in backbone.layers if not isinstance(layer, FrozenBatchNormalization)
    }
    del backbone
    gc.collect()
    assert all(ref() is None for ref in gone)
    for a, b in zip(expected, folded(x)):
        _assert_close(b, a)


def test_fold_conv_bn_is_the_formula():
    rng = np.random.default_rng(0)
    k, b = rng.normal(size=(1, 1, 2, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    mean, var, gamma, beta = rng.normal(size=3), rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3)
    k2, b2 = fold_conv_bn(k, b, mean, var, gamma, beta, 1e-5)
    s = gamma / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(k2, k * s, rtol=1e-6)
    np.testing.assert_allclose(b2, (b - mean) * s + beta, rtol=1e-6, atol=1e-7)
    assert k2.dtype == np.float32 and b2.shape == (3,)
    k3, b3 = fold_conv_bn(k, None, mean, var, None, None, 1e-5)
    np.testing.assert_allclose(k3, k / np.sqrt(var + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(b3, -mean / np.sqrt(var + 1e-5), rtol=1e-6)
    with pytest.raises(ValueError, match="output channels"):
        fold_conv_bn(k, b, mean[:2], var, gamma, beta, 1e-5)


def test_a_group_norm_model_is_not_touched():
    model = build_model(get_config("cpu_small", **SMALL))
    assert fold_frozen_batchnorm(model) is model
    assert fold_functional(model.backbone) is model.backbone


@pytest.fixture(scope="module")
def r50():
    """(unfolded, folded) r50_fpn_imagenet (random weights, random BatchNorm statistics) at 128 px."""
    keras.utils.set_random_seed(0)
    cfg = get_config("r50_fpn_imagenet", **{"model.backbone.weights": None, **SMALL})
    model = build_model(cfg)
    assert _randomise_batchnorm(model) == 53
    return model, fold_frozen_batchnorm(model)


def test_the_folded_r50_has_no_batchnorm_and_the_same_convolutions(r50):
    model, folded = r50
    assert len(frozen_batchnorm_layers(model)) == 53 and not frozen_batchnorm_layers(folded)
    assert not [layer for layer in _all_layers(folded) if isinstance(layer, keras.layers.BatchNormalization)]
    before, after = _convs(model.backbone), _convs(folded.backbone)
    assert len(after) == len(before) == 53
    assert [c.name for c in after] == [c.name for c in before] and all(c.use_bias for c in after)
    assert [tuple(c.kernel.shape) for c in after] == [tuple(c.kernel.shape) for c in before]
    for name in PARTS:  # the other sub-models are shared (the same weights), the original is unchanged
        if name != "backbone":
            assert getattr(folded, name) is getattr(model, name)
    assert folded.backbone is not model.backbone and len(frozen_batchnorm_layers(model.backbone)) == 53


def test_the_folded_r50_gives_the_same_features_on_a_real_photo(r50, fixtures_dir):
    """A real photo (Pascal-Part fixture, resized to 160 px, padded to 32): every FPN level within float32
    rounding of the unfolded model."""
    from PIL import Image

    model, folded = r50
    photo = Image.open(fixtures_dir / "pascal_part" / "JPEGImages" / "2008_000652.jpg").convert("RGB")
    photo.thumbnail((160, 160))
    pixels = np.zeros((1, 160, 160, 3), np.float32)
    pixels[0, : photo.height, : photo.width] = np.asarray(photo, np.float32)
    for a, b in zip(model.features(tf.constant(pixels)), folded.features(tf.constant(pixels))):
        _assert_close(b, a)


def test_the_folded_r50_gives_the_same_features_and_detections(r50):
    model, folded = r50
    image = tf.constant(_image(128, 128)[None].astype(np.float32))
    x = tf.constant(np.random.default_rng(0).normal(0, 50, (1, 128, 96, 3)).astype(np.float32))
    x = [x, tf.constant([[128, 96, 128, 96]], tf.int32)]  # the image and its valid sizes (no padding)
    for a, b in zip(model.backbone(x), folded.backbone(x)):
        _assert_close(b, a)
    for a, b in zip(model.features(image), folded.features(image)):
        _assert_close(b, a)
    ref = {k: v.numpy() for k, v in model.detect(image).items()}
    out = {k: v.numpy() for k, v in folded.detect(image).items()}
    assert int(ref["num_detections"][0]) == int(out["num_detections"][0]) == 5
    np.testing.assert_allclose(out["scores"], ref["scores"], atol=1e-5)
    np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1e-2)
    np.testing.assert_allclose(out["keypoints"][..., :2], ref["keypoints"][..., :2], atol=1e-2)
    np.testing.assert_allclose(out["keypoints"][..., 2], ref["keypoints"][..., 2], atol=1e-4)
    assert_masks_close(out["masks"], ref["masks"], atol=1e-4)


@pytest.fixture(scope="module")
def frozen_bn_export(tmp_path_factory):
    """(unfolded Keras model, cfg, train_dir, Exported) of a frozen-BatchNorm cpu_small (tiny backbone)."""
    from maskrcnn_body.inference.loading import load_trained_model, write_train_dir
    from maskrcnn_body.workflows import export

    d = tmp_path_factory.mktemp("fold_export")
    keras.utils.set_random_seed(0)
    cfg = get_config("cpu_small", **{"model.backbone.norm": "frozen_bn", **SMALL})
    model = build_model(cfg)
    assert _randomise_batchnorm(model) > 0
    train_dir = str(d / "run")
    write_train_dir(model, cfg, train_dir)
    onnx = str(d / "model.onnx") if _has("tf2onnx") and _has("onnxruntime") else ""
    out = export.export(
        train_dir, str(d / "saved_model"), tflite=str(d / "model.tflite"), onnx=onnx, log=lambda msg: None
    )
    loaded, cfg, _ = load_trained_model(train_dir)
    return loaded, cfg, train_dir, out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _assert_detections_close(out, ref):
    """The same detections (rows matched by box: random weights give near-tied scores whose order may
    differ), to the module docstring's export tolerances."""
    out = trim(out) if "num_detections" in out else out
    n = len(ref["scores"])
    assert n > 0 and len(out["scores"]) == n
    order = np.abs(out["boxes"][:, None] - ref["boxes"][None]).max(-1).argmin(1)
    assert sorted(order) == list(range(n))
    np.testing.assert_allclose(out["boxes"], ref["boxes"][order], atol=1e-2)
    np.testing.assert_allclose(out["scores"], ref["scores"][order], atol=1e-4)
    np.testing.assert_allclose(out["keypoints"][..., :2], ref["keypoints"][order, :, :2], atol=1e-2)
    assert_masks_close(out["masks"], ref["masks"][order], atol=1e-4)


@pytest.mark.slow
def test_every_export_of_a_frozen_bn_model_is_folded_and_matches_the_unfolded_model(frozen_bn_export):
    from helpers.exports import run_onnx, run_tflite
    from maskrcnn_body.inference.backends import SIGNATURE
    from maskrcnn_body.inference.predictor import Predictor

    model, cfg, train_dir, out = frozen_bn_export
    assert frozen_batchnorm_layers(model)
    reference = Predictor(model, cfg)  # the unfolded model
    fn = tf.saved_model.load(out.saved_model).signatures[SIGNATURE]
    graph = fn.graph.as_graph_def()
    nodes = [n for f in graph.library.function for n in f.node_def] + list(graph.node)
    assert not [n.name for n in nodes if "batchnorm" in n.name.lower() or "_bn" in n.name.lower()]
    assert not {n.op for n in nodes} & {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
    convs = sum(n.op == "Conv2D" for n in nodes)
    assert convs >= len(_convs(model.backbone))
    folded_runner = Predictor.from_train_dir(train_dir)  # the TensorFlow runner folds too
    assert not frozen_batchnorm_layers(folded_runner.model)
    for i, hw in enumerate([(128, 128), (100, 150)]):
        image = _image(*hw, index=i)
        ref = reference(image)
        _assert_detections_close(folded_runner(image), ref)
        _assert_detections_close({k: v.numpy() for k, v in fn(image=tf.constant(image)).items()}, ref)
        _assert_detections_close(run_tflite(out.tflite["none"], image), ref)
        if out.onnx:
            _assert_detections_close(run_onnx(out.onnx, image), ref)
    assert os.path.getsize(out.tflite["none"]) > 100_000
