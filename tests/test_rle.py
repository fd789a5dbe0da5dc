"""COCO RLE in numpy (:mod:`maskrcnn_body.evaluation.rle`): the exact strings of pycocotools, both ways."""

import numpy as np
import pytest

from maskrcnn_body.evaluation import rle


def _masks():
    rng = np.random.default_rng(0)
    for t in range(300):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        if t % 5 == 0:
            yield np.full((h, w), t % 10 == 0)  # all set / all clear
        elif t % 5 == 1:  # a blob: long runs whose differences grow and shrink (negative deltas)
            m = np.zeros((h, w), bool)
            m[int(rng.integers(0, h)) :, : int(rng.integers(0, w + 1))] = True
            yield m
        else:
            yield rng.uniform(size=(h, w)) < rng.uniform()
    yield np.zeros((0, 5), bool)
    big = np.zeros((1000, 1500), bool)
    big[100:900, 200:1400] = True  # counts past 2^15: several 5-bit groups
    yield big


def test_strings_equal_pycocotools_and_decode_back():
    mask_utils = pytest.importorskip("pycocotools.mask", reason="the [eval] extra (pycocotools) is not installed")
    for m in _masks():
        want = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        got = rle.encode(m)
        assert got == {"size": list(m.shape), "counts": want["counts"].decode()}, m.shape
        np.testing.assert_array_equal(rle.decode(got), mask_utils.decode(want))
        assert rle.decompress(want["counts"]) == rle.mask_counts(m)
        # uncompressed counts decode too (pycocotools' frPyObjects input)
        np.testing.assert_array_equal(rle.decode({"size": list(m.shape), "counts": rle.mask_counts(m)}), m)


def test_counts_that_do_not_fit_the_size_are_an_error():
    with pytest.raises(ValueError, match=r"add up to 5 pixels, not 2x3 = 6"):
        rle.decode({"size": [2, 3], "counts": [2, 3]})
