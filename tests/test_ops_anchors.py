"""ops.anchors: count, centres, sizes, aspect ratios and the (level, y, x, anchor) order."""

import numpy as np

from maskrcnn_body.config import get_config
from maskrcnn_body.ops import anchors as anchor_ops

SCALES = (1.0, 2.0)
RATIOS = (0.5, 1.0, 2.0)


def test_level_shapes_ceil():
    assert anchor_ops.level_shapes((100, 130), 2, 3) == [(25, 33), (13, 17)]


def test_count_centres_sizes_order():
    per_level, all_anchors = anchor_ops.generate_anchors((64, 96), 2, 3, 8.0, SCALES, RATIOS)
    na = len(SCALES) * len(RATIOS)
    assert [p.shape[0] for p in per_level] == [16 * 24 * na, 8 * 12 * na]
    assert all_anchors.shape == (16 * 24 * na + 8 * 12 * na, 4)
    np.testing.assert_array_equal(all_anchors.numpy()[: per_level[0].shape[0]], per_level[0].numpy())
    for lvl, anchors in zip((2, 3), per_level):
        stride = 2**lvl
        hl, wl = 64 // stride, 96 // stride
        grid = anchors.numpy().reshape(hl, wl, na, 4)  # row-major (y, x, anchor) order
        cx = (grid[..., 0] + grid[..., 2]) / 2
        cy = (grid[..., 1] + grid[..., 3]) / 2
        np.testing.assert_allclose(cx, np.broadcast_to(((np.arange(wl) + 0.5) * stride)[None, :, None], cx.shape))
        np.testing.assert_allclose(cy, np.broadcast_to(((np.arange(hl) + 0.5) * stride)[:, None, None], cy.shape))
        w = grid[0, 0, :, 2] - grid[0, 0, :, 0]
        h = grid[0, 0, :, 3] - grid[0, 0, :, 1]
        # scale-major: a = scale_index * len(RATIOS) + ratio_index
        sizes = np.repeat([8.0 * stride * s for s in SCALES], len(RATIOS))
        ratios = np.tile(RATIOS, len(SCALES))
        np.testing.assert_allclose(np.sqrt(w * h), sizes, rtol=1e-5)
        np.testing.assert_allclose(h / w, ratios, rtol=1e-5)


def test_config_helper_uses_rpn_levels():
    anchors = get_config("cpu_small").model.anchors
    per_level, all_anchors = anchor_ops.generate_anchors_for_config(anchors, (256, 256))
    assert len(per_level) == anchors.max_level - 2 + 1
    expected = sum((256 // 2**level) ** 2 for level in range(2, anchors.max_level + 1))
    assert all_anchors.shape[0] == expected * anchors.per_location
