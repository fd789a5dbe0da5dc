"""ops.paste: the pasting rule (box-frame masks -> image pixels), crops and part label maps (numpy only)."""

import numpy as np

from helpers import scenes
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.ops import paste

H, W, M = 64, 96, 36
BOXES = [(6, 14, 42, 50), (50, 10, 86, 46)]  # 36 px squares: crop/paste at M = 36 is exact


def test_paste_identity_when_box_is_mask_sized():
    rng = np.random.default_rng(0)
    probs = rng.random((1, 4, 4, 7)).astype(np.float32)
    out = paste.paste_probabilities(probs, np.array([[2, 3, 6, 7]], float), 10, 10)[0]
    assert (out.y0, out.x0) == (3, 2)
    np.testing.assert_allclose(out.values, probs[0], atol=1e-6)


def test_paste_bilinear_upsampling_is_half_pixel_centred():
    # mask [0, 1] across a 4 px box: centres 0.5..3.5 -> positions -0.25, 0.25, 0.75, 1.25
    mask = np.zeros((1, 2, 2, 7), np.float32)
    mask[0, :, 1, :] = 1
    out = paste.paste_probabilities(mask, np.array([[0, 0, 4, 4]], float), 4, 4)[0].values
    np.testing.assert_allclose(out[0, :, 0], [0, 0.25, 0.75, 1.0], atol=1e-6)


def test_paste_covers_pixels_whose_centre_is_in_the_box():
    ones = np.ones((1, 3, 3, 7), np.float16)
    m = paste.paste_masks(ones, np.array([[1.4, 0.6, 3.5, 2.5]]), 5, 5)[0, ..., 0]
    # column centres in [1.4, 3.5): 1.5, 2.5 -> columns 1, 2; row centres in [0.6, 2.5): 1.5 -> row 1
    assert np.array_equal(np.argwhere(m.any(0)).ravel(), [1, 2])
    assert np.array_equal(np.argwhere(m.any(1)).ravel(), [1])


def test_paste_clips_parts_to_body_and_handles_borders():
    mask = np.zeros((1, 4, 4, 7), np.float32)
    mask[0, 2:, 2:, 0] = 1  # body: bottom-right quarter of the box frame
    mask[0, :, :, 3] = 1  # left arm everywhere
    # box [-2, 2) x [-2, 2): image pixels 0, 1 are mask cells 2, 3; pixel 2 is outside the box
    out = paste.paste_masks(mask, np.array([[-2, -2, 2, 2]], float), 3, 3)
    assert out.shape == (1, 3, 3, 7)
    np.testing.assert_array_equal(out[0, ..., 3], out[0, ..., 0])
    assert out[0, :2, :2, 0].all() and out[0, :2, :2].sum() == 8 and not out[0, 2].any()
    assert paste.paste_masks(mask, np.array([[5, 5, 9, 9]], float), 3, 3).sum() == 0  # outside image


def test_crop_then_paste_restores_masks():
    ch = unpack_channels(scenes.make_scene(H, W, BOXES)["gt_parts"])
    pasted = paste.paste_masks(paste.crop_masks(ch, np.array(BOXES, float), M), np.array(BOXES, float), H, W)
    np.testing.assert_array_equal(pasted, ch)


def test_part_label_map_overlaps():
    a = np.zeros((2, 1, 3, 7), bool)
    a[0, 0, :2, 0] = True
    a[0, 0, 0, 2] = True
    a[0, 0, 0, 3] = True  # torso + left arm at px 0
    a[1, 0, 1:, 0] = True
    a[1, 0, 1, 6] = True  # person 1 overlaps px 1
    np.testing.assert_array_equal(paste.part_label_map(a, [0.9, 0.5])[0], [3, paste.BODY_ONLY, paste.BODY_ONLY])
    np.testing.assert_array_equal(paste.part_label_map(a, [0.5, 0.9])[0], [3, 6, paste.BODY_ONLY])
    np.testing.assert_array_equal(paste.part_label_map(a)[0], [3, paste.BODY_ONLY, paste.BODY_ONLY])
    np.testing.assert_array_equal(paste.part_label_map(a[:0])[0], [0, 0, 0])


def test_pasted_crop_window_pads_and_clips():
    crop = paste.PastedCrop(2, 3, np.arange(6, dtype=np.float32).reshape(2, 3, 1))
    win = crop.window(1, 3, 4, 8)[..., 0]  # rows 1-2, columns 4-7: one row/two columns overlap
    np.testing.assert_array_equal(win, [[0, 0, 0, 0], [1, 2, 0, 0]])
    assert crop.full(5, 7)[..., 0].sum() == 15
