"""ops.backend: the one owner of the kernel (compiled or pure TF) and NMS choices."""

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.model import postprocess
from maskrcnn_body.ops import backend, boxes


def test_backend_selection(monkeypatch):
    """One owner decides: explicit argument > use_backend block > env MASKRCNN_BODY_OPS > auto."""
    monkeypatch.setenv(backend.ENV_VAR, "tf")
    assert backend.requested() == "tf" and backend.resolve() is None
    with pytest.raises(ValueError, match="cuda"):
        backend.resolve("cuda")
    name = backend.name_of("auto")
    assert name in ("tf", "custom") and (backend.resolve("auto") is None) == (name == "tf")
    if name == "tf":
        with pytest.raises(RuntimeError, match="compiled ops requested"):
            backend.resolve("custom")
    monkeypatch.setenv(backend.ENV_VAR, "auto")
    with backend.use_backend("tf"):  # what export traces under
        assert backend.requested() == "tf" and backend.requested("auto") == "auto"
        with backend.use_backend("auto"):
            assert backend.requested() == "auto"
        assert backend.requested() == "tf"
    assert backend.requested() == "auto"
    monkeypatch.setenv(backend.ENV_VAR, "gpu")
    with pytest.raises(ValueError, match="MASKRCNN_BODY_OPS"):
        backend.requested()


def _trace(fn, *args):
    """(op types of the traced graph, outputs) of ``tf.function(fn)(*args)``."""
    concrete = tf.function(fn).get_concrete_function(*args)
    return {op.type for op in concrete.graph.get_operations()}, concrete(*args)


def _greedy_nms(b, s, k, thr):
    """Reference: score order (lower index first on ties), suppress when IoU > thr."""
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    for i in sorted(range(len(s)), key=lambda i: (-s[i], i)):
        x1, y1 = np.maximum(b[keep, 0], b[i, 0]), np.maximum(b[keep, 1], b[i, 1])
        x2, y2 = np.minimum(b[keep, 2], b[i, 2]), np.minimum(b[keep, 3], b[i, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        if not keep or (inter / (area[keep] + area[i] - inter)).max() <= thr:
            keep.append(i)
    return keep[:k]


def test_use_backend_selects_the_nms_op():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 80, (2, 40, 2))
    wh = rng.uniform(5, 40, (2, 40, 2))
    b = tf.constant(np.concatenate([xy, xy + wh], -1), tf.float32)
    s = tf.constant(rng.permutation(80).reshape(2, 40) / 80.0, tf.float32)

    def nms(b, s):
        return postprocess.batched_nms(b, s, 12, 0.5)

    assert backend.nms_op() == "v4"  # the default: the kernel (training's RPN NMS ~12x faster than padded)
    with backend.use_backend(nms="padded"):
        assert backend.nms_op() == "padded"
        padded_ops, (padded_idx, padded_valid) = _trace(nms, b, s)
        with backend.use_backend("tf"):  # a kernels-only block keeps the NMS choice
            assert backend.nms_op() == "padded" and backend.requested() == "tf"
        with backend.use_backend(nms="v4"):
            assert backend.nms_op() == "v4"
            v4_ops, (v4_idx, v4_valid) = _trace(nms, b, s)
    assert backend.nms_op() == "v4"
    assert "NonMaxSuppressionV4" in v4_ops and "NonMaxSuppressionV4" not in padded_ops
    np.testing.assert_array_equal(v4_idx, padded_idx)
    np.testing.assert_array_equal(v4_valid, padded_valid)
    for i in range(2):
        want = _greedy_nms(b[i].numpy(), s[i].numpy(), 12, 0.5)
        assert padded_idx[i].numpy()[padded_valid[i].numpy()].tolist() == want
    with pytest.raises(ValueError, match="nms"), backend.use_backend(nms="v3"):
        pass


def test_use_backend_selects_the_kernels():
    a = tf.constant([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    c = tf.constant([[0.0, 0.0, 10.0, 20.0]])
    want = [[0.5], [0.2]]
    with backend.use_backend("tf", nms="v4"):  # what export traces under
        assert backend.requested() == "tf" and backend.nms_op() == "v4"
        tf_ops, tf_iou = _trace(boxes.pairwise_iou, a, c)
    assert "BoxPairwiseIou" not in tf_ops
    np.testing.assert_allclose(tf_iou, want, rtol=1e-6)
    if backend.name_of("auto") != "custom":
        pytest.skip("compiled ops not built")
    with backend.use_backend("custom"):
        custom_ops, custom_iou = _trace(boxes.pairwise_iou, a, c)
    assert "BoxPairwiseIou" in custom_ops
    np.testing.assert_allclose(custom_iou, want, rtol=1e-6)
