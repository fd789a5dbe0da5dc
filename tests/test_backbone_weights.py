"""Fine-tuning from Keras' ImageNet ResNet50 (r50_fpn_imagenet): the model's C2-C5 are Keras' own
features, configs that could not reproduce them are errors, frozen layers, head normalisation."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.config import ConfigError, get_config, preset_names
from maskrcnn_body.model.backbone import build_backbone, normalize_images
from maskrcnn_body.model.maskrcnn import build_model
from maskrcnn_body.model.norm import valid_sizes

C_LAYERS = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def _keras_resnet50_with_random_statistics(seed=0):
    """keras.applications.ResNet50(weights=None) with random BatchNorm gamma/beta/mean/variance, so a
    model that dropped the statistics (GroupNorm) or fed other pixels could not match it."""
    keras.utils.set_random_seed(seed)
    ref = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(seed)
    for layer in ref.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.5, c), rng.uniform(0.5, 2.0, c)]
            )
    return ref


@pytest.fixture(scope="module")
def resnet50_files(tmp_path_factory):
    """The same random ResNet50 as a Keras 3 ``.weights.h5`` and as the legacy ``.h5`` layout that
    keras.applications downloads (resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5)."""
    from keras.src.legacy.saving import legacy_h5_format

    ref = _keras_resnet50_with_random_statistics()
    d = tmp_path_factory.mktemp("weights")
    new, legacy = str(d / "resnet50.weights.h5"), str(d / "resnet50_notop.h5")
    ref.save_weights(new)
    with h5py.File(legacy, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, ref)
    return ref, {"weights.h5": new, "legacy .h5": legacy}


def _cosine(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("kind", ["weights.h5", "legacy .h5"])
def test_c2_to_c5_equal_keras_features_on_preprocess_input(resnet50_files, kind):
    """get_config("r50_fpn_imagenet", model.backbone.weights=PATH): an RGB uint8 image fed as the
    pipeline feeds it (float32 RGB 0-255) gives Keras' own C2-C5 of resnet50.preprocess_input(image)."""
    ref, files = resnet50_files
    cfg = get_config("r50_fpn_imagenet", **{"model.backbone.weights": files[kind]})
    model = build_model(cfg)
    image = np.random.default_rng(1).integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    x = normalize_images(tf.constant(image, tf.float32), cfg.model.backbone)
    ours = model.backbone([x, valid_sizes([[96, 128]], (96, 128))], training=False)
    keras_features = keras.Model(ref.input, [ref.get_layer(n).output for n in C_LAYERS])
    theirs = keras_features(keras.applications.resnet50.preprocess_input(image.astype(np.float32)))
    for name, a, b in zip(C_LAYERS, ours, theirs):
        assert a.shape == b.shape, name
        assert _cosine(a.numpy(), b.numpy()) >= 0.999, name


def test_defaults_that_could_not_reproduce_the_features_do_not(resnet50_files):
    """What the r50_fpn defaults would compute with the same weights is far from Keras' features,
    which is why such configs are errors (next test)."""
    ref, files = resnet50_files
    image = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8).astype(np.float32)
    theirs = keras.Model(ref.input, ref.get_layer(C_LAYERS[-1]).output)(
        keras.applications.resnet50.preprocess_input(image.copy())
    )
    bb = get_config("r50_fpn_imagenet", **{"model.backbone.weights": files["weights.h5"]}).model.backbone
    bb.preprocessing = "torch"  # bypassing the check: RGB, mean/std-normalised pixels
    ours = build_backbone(bb)([normalize_images(tf.constant(image), bb), valid_sizes([[64, 64]], (64, 64))])[-1]
    assert _cosine(ours.numpy(), theirs.numpy()) < 0.95


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.backbone.norm": "group"}, "model.backbone.norm: 'group' drops the BatchNorm statistics"),
        (
            {"model.backbone.preprocessing": "torch"},
            "model.backbone.preprocessing: Keras' ImageNet ResNet50 weights expect caffe-style input",
        ),
        ({"model.backbone.name": "resnet18"}, "pretrained weights exist for 'resnet50' only"),
    ],
)
def test_weights_with_a_mismatched_normalisation_or_input_are_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_config("r50_fpn_imagenet", **overrides)
    with pytest.raises(ConfigError, match="model.backbone.norm|model.backbone.preprocessing"):
        get_config("r50_fpn", **{"model.backbone.weights": "imagenet"})  # the r50_fpn defaults


def test_stem_and_first_stage_are_frozen(resnet50_files):
    _, files = resnet50_files
    cfg = get_config("r50_fpn_imagenet", **{"model.backbone.weights": files["weights.h5"]})
    backbone = build_model(cfg).backbone
    names = {v.path.split("/")[0] for v in backbone.trainable_variables}
    assert names and not any(n.startswith(("conv1", "conv2_")) for n in names)
    assert any(n.startswith("conv3_block1_1_conv") for n in names)
    assert not any(n.endswith("_bn") for n in names)  # frozen BatchNorm never trains
    everything = build_backbone(get_config("r50_fpn").model.backbone)
    assert any(v.path.startswith("conv1_conv") for v in everything.trainable_variables)


def test_imagenet_download_failure_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno 101]")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(ValueError, match="could not download the ImageNet weights.*model.backbone.weights=PATH"):
        build_backbone(get_config("r50_fpn_imagenet").model.backbone)


def _consumer(layer):
    nodes = getattr(layer, "_outbound_nodes", [])
    return nodes[0].operation if nodes else None


@pytest.mark.parametrize(
    "preset", [p for p in preset_names() if p in ("r50_fpn", "r50_fpn_imagenet", "cpu_small", "legacy")]
)
def test_every_head_convolution_has_a_trainable_offset(preset):
    """Under every preset each head convolution has a trainable bias or a trainable normalisation
    after it (frozen BatchNorm in the backbone must not freeze the heads)."""
    cfg = get_config(preset, **{"model.backbone.weights": None})
    model = build_model(cfg)
    heads = [model.rpn_head, model.box_head, model.mask_head] + ([model.keypoint_head] if model.keypoint_head else [])
    checked = 0
    for head in heads:
        for layer in head.layers:
            if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                continue
            checked += 1
            if layer.use_bias and layer.bias.trainable:
                continue
            nxt = _consumer(layer)
            assert nxt is not None and nxt.trainable_weights and nxt.trainable, (preset, head.name, layer.name)
    assert checked >= 5
