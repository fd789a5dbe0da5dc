"""The built-in synthetic renderer: determinism, schema validity, label invariants, sides.

The record files are tested in test_convert_synthetic.py."""

import numpy as np
import pytest

from maskrcnn_body import constants
from maskrcnn_body.data import schema, synthetic

KP = constants.KEYPOINT_INDEX


@pytest.fixture(scope="module")
def scenes():
    return list(synthetic.generate(24, seed=3, height=256, width=256))


def _parts_equal(a, b):
    return len(a.persons) == len(b.persons) and all(
        np.array_equal(p.parts, q.parts) and np.array_equal(p.keypoints, q.keypoints)
        for p, q in zip(a.persons, b.persons)
    )


def test_same_seed_same_bytes_and_splits_differ():
    a = list(synthetic.generate(3, seed=7, height=128, width=160))
    b = list(synthetic.generate(3, seed=7, height=128, width=160))
    for x, y in zip(a, b):
        assert x.image_bytes == y.image_bytes and _parts_equal(x, y)
        assert x.decode_image().shape == (128, 160, 3)
    val = list(synthetic.generate(3, seed=7, height=128, width=160, split="val"))
    other = list(synthetic.generate(3, seed=8, height=128, width=160))
    for x, v, o in zip(a, val, other):
        assert x.image_bytes != v.image_bytes and x.image_bytes != o.image_bytes
    assert [r.source_id for r in val] == ["synthetic_val_000000", "synthetic_val_000001", "synthetic_val_000002"]
    # an image does not depend on which images were generated before it
    assert next(synthetic.generate(1, seed=7, height=128, width=160, start=2)).image_bytes == a[2].image_bytes


def test_person_counts_and_schema_fields(scenes):
    counts = [len(r.persons) for r in scenes]
    assert all(0 <= n <= synthetic.MAX_PERSONS for n in counts)
    assert max(counts) >= 3 and len(set(counts)) >= 3
    for r in scenes:
        schema.validate_record(r)
        assert r.dataset == "synthetic" and r.image_format == b"png"
        for p in r.persons:
            np.testing.assert_array_equal(p.parts_valid, np.ones(7))


def test_channels_follow_the_drawing(scenes):
    for r in scenes:
        bodies = []
        for i, p in enumerate(r.persons):
            ch = schema.unpack_channels(p.parts)
            body = ch[..., constants.BODY]
            n_parts = ch[..., 1:].sum(-1)
            where = f"{r.source_id} person {i}"
            assert body.sum() >= 60, where
            assert not (n_parts[~body] > 0).any(), f"{where}: part pixel outside the body"
            assert (n_parts[body] == 1).all(), f"{where}: body pixel without exactly one part"
            assert ch[..., 1:].any(axis=(0, 1)).sum() >= 2, where
            np.testing.assert_array_equal(p.bbox, schema.bbox_from_mask(body), err_msg=where)
            bodies.append(body)
        if bodies:
            assert (np.sum(bodies, axis=0) <= 1).all(), f"{r.source_id}: people overlap in the masks"


def test_keypoint_visibility_and_occlusion(scenes):
    n_front_occluded = 0
    for r in scenes:
        owner = np.full((r.height, r.width), -1)
        for i, p in enumerate(r.persons):
            owner[p.parts & 1 == 1] = i
        for i, p in enumerate(r.persons):
            for k, (x, y, v) in enumerate(p.keypoints):
                where = f"{r.source_id} person {i} {constants.KEYPOINTS[k]}"
                assert v in (0, 1, 2), where
                if v == 0:
                    assert x == 0 and y == 0, where
                    continue
                assert 0 <= x < r.width and 0 <= y < r.height, where
                o = owner[int(y), int(x)]
                if v == 2:
                    assert o == i, where
                elif o not in (i, -1):
                    # hidden by someone else: persons are listed back to front, so it is someone later
                    assert o > i, where
                    n_front_occluded += 1
    assert n_front_occluded > 0


def test_keypoints_on_their_own_parts(scenes):
    """A visible wrist lies on the same-side arm channel, a visible face on the head, etc."""
    expect = {
        "face": "head",
        "left_wrist": "left_arm",
        "right_wrist": "right_arm",
        "left_elbow": "left_arm",
        "right_knee": "right_leg",
        "left_ankle": "left_leg",
    }
    checked = 0
    for r in scenes:
        for p in r.persons:
            for kp, channel in expect.items():
                x, y, v = p.keypoints[KP[kp]]
                if v == 2:
                    assert p.channel(constants.CHANNEL_INDEX[channel])[int(y), int(x)], (r.source_id, kp)
                    checked += 1
    assert checked > 50


@pytest.mark.parametrize("front", [True, False])
def test_sides_follow_facing(front):
    """Facing the camera the subject's left is on the image's right; facing away, on its left."""
    for seed in range(10):
        canvas, kps = synthetic._draw_person(np.random.default_rng(seed), 120.0, np.array([150.0, 150.0]), front)
        sign = 1 if front else -1
        for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")):
            assert sign * (kps[KP[a], 0] - kps[KP[b], 0]) > 12, (seed, a)
        lab = np.asarray(canvas.label)
        ys, xs = np.mgrid[0 : lab.shape[0], 0 : lab.shape[1]] + canvas.origin[::-1, None, None] + 0.5
        for side, other in (("left", "right"), ("right", "left")):
            sx, sy = kps[KP[f"{side}_shoulder"], :2]
            near = (xs - sx) ** 2 + (ys - sy) ** 2 < 5.0**2
            own = (near & (lab == constants.CHANNEL_INDEX[f"{side}_arm"])).sum()
            wrong = (near & (lab == constants.CHANNEL_INDEX[f"{other}_arm"])).sum()
            if front:  # arms are in front of the torso, so the shoulder shows its own arm
                assert own > 0, (seed, side)
            assert own >= wrong, (seed, side)
        # facing the camera shows eyes on the head, facing away does not
        colour = np.asarray(canvas.colour)
        eyes = (np.all(colour == (25, 20, 20), axis=-1) & (lab == constants.CHANNEL_INDEX["head"])).sum()
        assert (eyes > 0) == front, seed


def test_both_facings_occur_and_sides_are_consistent(scenes):
    signs = []
    for r in scenes:
        for p in r.persons:
            k = p.keypoints
            pairs = [(KP["left_shoulder"], KP["right_shoulder"]), (KP["left_hip"], KP["right_hip"])]
            if all(k[a, 2] > 0 and k[b, 2] > 0 for a, b in pairs):
                s = [np.sign(k[a, 0] - k[b, 0]) for a, b in pairs]
                assert s[0] == s[1], r.source_id
                signs.append(s[0])
    assert signs.count(1) >= 3 and signs.count(-1) >= 3
