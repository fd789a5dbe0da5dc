"""Parsing metrics on the literature's scale: parity with the CIHP / MHP-v2 reference definitions.

``reference_figures`` below is an independent implementation, written for this test from the
published definitions of the benchmarks' evaluation code (MHP-v2 ``eval_mhp.py``, Parsing R-CNN
``parsing_eval.py``), not from ``evaluation/parsing.py``:

* one full-image label map per person (0 background, 1..K parts), a per-detection label map of the
  same kind, and per (detection, person) a K+1 class confusion over the whole image; person IoU =
  ``nanmean`` of the class IoUs, background included;
* detections of the whole set by decreasing score; each takes the person of its image with the
  highest person IoU (``>`` comparisons, first person on ties); a true positive when that IoU is
  ``> t`` and the person is still free, else a false positive; VOC all-point AP from the
  cumulated counts; APp_vol = mean over t = 0.1 .. 0.9;
* PCP at 0.5: per true positive, parts with IoU ``> 0.5`` over the part labels in the person's
  map; zeros for people never matched; mean over all people;
* mIoU: one confusion over the image-level maps of all images (people painted in increasing score
  order, each over the others where it has a part), ``nanmean`` with background.

The project's conventions that the reference leaves open are the documented ones: the part
priority (head, left arm, right arm, left leg, right leg, torso), body pixels without a part
(background in a prediction, ignored - label 255 - in the ground truth), pasting (probability >=
0.5, parts clipped to the body; the boxes here are M pixels wide on pixel edges, so pasting is a
copy), mIoU maps from detections with score >= 0.5 and the ground truth's first person first.
"""

import numpy as np
import pytest

from helpers import scenes
from maskrcnn_body import constants
from maskrcnn_body.data.schema import pack_channels
from maskrcnn_body.evaluation import evaluate
from maskrcnn_body.ops import paste

H, W, M = 48, 64, 16
PRIORITY = ("head", "left_arm", "right_arm", "left_leg", "right_leg", "torso")
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
K = constants.NUM_CHANNELS  # classes of a label map: background + 6 parts
REFERENCE_KEYS = ("mIoU", "APp50", "APp_vol", "PCP50")


# --------------------------------------------------------------------------- the reference, written out
def priority_labels(channels, body_value):
    """int64 (H, W): the first part of PRIORITY set at a pixel; ``body_value`` on body pixels
    without a part; 0 elsewhere."""
    order = [constants.CHANNEL_INDEX[n] for n in PRIORITY]
    stack = channels[..., order]
    first = np.asarray(order)[stack.argmax(-1)]
    out = np.where(stack.any(-1), first, np.where(channels[..., 0], body_value, 0))
    return out.astype(np.int64)


def hist(gt, pred):
    keep = (gt >= 0) & (gt < K)
    return np.bincount(K * gt[keep] + pred[keep], minlength=K * K).reshape(K, K).astype(np.float64)


def ious_of(h):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diag(h) / (h.sum(1) + h.sum(0) - np.diag(h))


def voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def pasted(dump):
    """bool (R, H, W, 7) of M-sized, pixel-aligned boxes: a copy, thresholded, parts in the body."""
    out = np.zeros((len(dump["boxes"]), H, W, K), bool)
    for r, (x1, y1, x2, y2) in enumerate(dump["boxes"].astype(int)):
        assert x2 - x1 == M and y2 - y1 == M
        m = dump["masks"][r].astype(np.float32) >= 0.5
        m[..., 1:] &= m[..., :1]
        ya, yb, xa, xb = max(y1, 0), min(y2, H), max(x1, 0), min(x2, W)
        out[r, ya:yb, xa:xb] = m[ya - y1 : yb - y1, xa - x1 : xb - x1]
    return out


def reference_figures(dumps, semseg_thresh=0.5):
    total = np.zeros((K, K))
    gts, dets = [], []  # gts[i]: person maps of image i; dets: (score, image, detection map)
    for i, d in enumerate(dumps):
        gt_channels = [(d["gt_parts"][g][..., None] >> np.arange(K)) & 1 != 0 for g in range(len(d["gt_parts"]))]
        maps = [priority_labels(ch, 255) for ch in gt_channels]
        gts.append([m for m in maps if ((m > 0) & (m < K)).any()])
        pmaps = [priority_labels(p, 0) for p in pasted(d)]
        dets += [(float(s), i, pm) for s, pm in zip(d["scores"], pmaps)]
        seg = np.zeros((H, W), np.int64)
        for r in sorted(range(len(pmaps)), key=lambda r: (d["scores"][r], -r)):  # ascending; ties: earlier last
            if d["scores"][r] >= semseg_thresh:
                seg = np.where(pmaps[r] > 0, pmaps[r], seg)
        seg_gt = np.zeros((H, W), np.int64)
        for m in reversed(maps):  # the first person on top
            seg_gt = np.where(m != 0, m, seg_gt)
        total += hist(seg_gt.ravel(), seg.ravel())
    npos = sum(len(g) for g in gts)
    order = sorted(range(len(dets)), key=lambda j: -dets[j][0])  # stable on ties
    aps, pcp50 = [], None
    for t in THRESHOLDS:
        taken = [[False] * len(g) for g in gts]
        tp, fp, pcp = np.zeros(len(order)), np.zeros(len(order)), []
        for n, j in enumerate(order):
            _, i, pm = dets[j]
            ovmax, jmax, best = -np.inf, -1, None
            for g, m in enumerate(gts[i]):
                iu = ious_of(hist(m.ravel(), pm.ravel()))
                with np.errstate(invalid="ignore"):
                    mean = np.nanmean(iu) if not np.isnan(iu).all() else np.nan
                if mean > ovmax:
                    ovmax, jmax, best = mean, g, (iu, np.unique(m))
            if ovmax > t and not taken[i][jmax]:
                tp[n] = 1
                taken[i][jmax] = True
                iu, labels = best
                with np.errstate(invalid="ignore"):
                    pcp.append(float(np.sum(iu[1:] > t)) / len(labels[(labels > 0) & (labels < K)]))
            else:
                fp[n] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        aps.append(voc_ap(tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)))
        if t == 0.5:
            pcp50 = float(np.mean(pcp + [0.0] * (npos - len(pcp))))
    iu = ious_of(total)
    return {"mIoU": float(np.nanmean(iu)), "APp50": aps[4], "APp_vol": float(np.mean(aps)), "PCP50": pcp50, "IoU": iu}


# --------------------------------------------------------------------------- hand-built dumps
def rect(ch, k, y0, y1, x0, x1):
    ch[y0:y1, x0:x1, k] = True


def stick(y, x, s=16, rim=True):
    """(H, W, 7) channels of a stick person in the s x s box at (x, y): head, torso, arms, legs,
    and a one-pixel body rim on the left of the head row that belongs to no part."""
    ch = np.zeros((H, W, K), bool)
    q = s // 4
    rect(ch, 1, y, y + q, x + q + 1, x + 3 * q - 1)  # head
    rect(ch, 2, y + q, y + 3 * q, x + q, x + 3 * q)  # torso
    rect(ch, 4, y + q, y + 3 * q, x, x + q)  # right arm (image left)
    rect(ch, 3, y + q, y + 3 * q, x + 3 * q, x + s)  # left arm
    rect(ch, 6, y + 3 * q, y + s, x + q, x + 2 * q)  # right leg
    rect(ch, 5, y + 3 * q, y + s, x + 2 * q, x + 3 * q)  # left leg
    ch[..., 0] = ch[..., 1:].any(-1)
    if rim:
        ch[y : y + q, x + q, 0] = True
    return ch


def scene(people, source_id="hand", occlude=True):
    """Ground-truth half of a dump; ``people`` front to back: each person loses the pixels of the
    people listed before it (unless not ``occlude``: then people may share pixels)."""
    chans, front = [], np.zeros((H, W), bool)
    for ch in people:
        if occlude:
            ch = ch & ~front[..., None]
        front |= ch[..., 0]
        chans.append(ch)
    g = len(chans)
    boxes = []
    for ch in chans:
        ys, xs = np.nonzero(ch[..., 0])
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if ys.size else [0, 0, 0, 0])
    return {
        "image": np.zeros((H, W, 3), np.uint8),
        "source_id": source_id,
        "gt_boxes": np.asarray(boxes, np.float32).reshape(g, 4),
        "gt_parts": np.asarray([pack_channels(c) for c in chans], np.uint8).reshape(g, H, W),
        "gt_valid": np.ones((g, K), np.uint8),
        "gt_keypoints": np.zeros((g, constants.NUM_KEYPOINTS, 3), np.float32),
    }


def with_detections(sc, dets):
    """``dets``: [(score, x, y, channels (H, W, 7) bool)] with the M x M box at (x, y)."""
    r = len(dets)
    masks = np.zeros((r, M, M, K), np.float16)
    for i, (_, x, y, ch) in enumerate(dets):
        pad = np.zeros((H + 2 * M, W + 2 * M, K), bool)
        pad[M : M + H, M : M + W] = ch
        masks[i] = pad[y + M : y + 2 * M, x + M : x + 2 * M]
    return dict(
        sc,
        boxes=np.asarray([[x, y, x + M, y + M] for _, x, y, _ in dets], np.float32).reshape(r, 4),
        scores=np.asarray([s for s, _, _, _ in dets], np.float32),
        masks=masks,
        keypoints=np.zeros((r, constants.NUM_KEYPOINTS, 3), np.float32),
    )


def perfect(sc):
    """The dump with one exact detection per person (scores 0.9, 0.8, ...): a box M pixels square
    ending where the person's visible body ends (people fit in M x M)."""
    dets = []
    for g, codes in enumerate(sc["gt_parts"]):
        ch = (codes[..., None] >> np.arange(K)) & 1 != 0
        ys, xs = np.nonzero(ch[..., 0])
        dets.append((0.9 - 0.1 * g, int(xs.max()) + 1 - M, int(ys.max()) + 1 - M, ch))
    return with_detections(sc, dets)


def shifted(ch, dy, dx):
    return np.roll(np.roll(ch, dy, 0), dx, 1)


def hand_dumps():
    a, b, c = stick(2, 2), stick(6, 12), stick(28, 44)  # a in front of b; c far away
    b[12:14, 14:24, 4] = True  # b's right arm across its torso: both labels
    d = stick(26, 4)
    d[..., 3] = False  # d: left arm annotated but empty
    d[..., 0] = d[..., 1:].any(-1)
    s1 = scene([a, b, c, d], "one")
    # detections: a slightly off; b with head and torso overlapping (priority decides) and a
    # part outside the body (clipped); a duplicate of a; a false positive; c missed; d fair
    pa = shifted(a, 1, 0)
    pb = b.copy()
    pb[6:12, 17:26, 2] = True  # torso over the head rows
    pb[6:22, 12:28, 0] |= pb[6:22, 12:28, 1:].any(-1)
    pb[20:22, 12:28, 5] = True  # leg pixels outside the body: clipped
    pb[20:22, 12:28, 0] = False
    pd = shifted(d, 0, 1)
    pd[30:38, 16:20, 3] = True  # predicts the empty arm
    pd[..., 0] |= pd[..., 3]
    fp = stick(30, 26, rim=False)
    d1 = with_detections(
        s1, [(0.95, 2, 3, pa), (0.9, 12, 6, pb), (0.6, 2, 2, shifted(a, 0, 1)), (0.7, 26, 30, fp), (0.55, 4, 26, pd)]
    )
    # image 2: people sharing pixels; one detection swapped left/right, one empty, g missed
    e, f, g = stick(4, 10), stick(20, 40), stick(8, 16)
    s2 = scene([e, f, g], "two", occlude=False)  # g shares pixels with e
    flip = e[..., list(constants.CHANNEL_FLIP_PERM)]
    d2 = with_detections(
        s2, [(0.8, 10, 4, flip), (0.4, 40, 20, np.zeros((H, W, K), bool)), (0.35, 40, 21, shifted(f, 1, 0))]
    )
    # image 3: nobody, one false positive
    s3 = scene([], "three")
    d3 = with_detections(s3, [(0.5, 20, 20, stick(20, 20))])
    return [d1, d2, d3]


def random_dumps(seed, n=4):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        people = []
        for _ in range(rng.integers(1, 5)):
            y, x = int(rng.integers(0, H - M)), int(rng.integers(0, W - M))
            ch = stick(y, x, rim=bool(rng.integers(2)))
            for k in rng.choice(np.arange(1, K), rng.integers(0, 2), replace=False):
                ch[..., 0] &= ~ch[..., k]  # an empty (occluded) part
                ch[..., k] = False
            people.append(ch)
        sc = scene(people, f"rand{i}")
        keep = [g for g in range(len(people)) if (sc["gt_parts"][g] >> 1).any()]
        sc = {k: (v[keep] if k.startswith("gt_") else v) for k, v in sc.items()}
        dets = []
        for g in range(len(keep)):
            if rng.random() < 0.2:
                continue  # missed
            ch = (sc["gt_parts"][g][..., None] >> np.arange(K)) & 1 != 0
            if rng.random() < 0.5:
                ch = shifted(ch, int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
            noise = rng.random((H, W, K)) < rng.uniform(0.0, 0.06)
            ch = ch ^ (noise & ch[..., :1].repeat(K, -1))  # flip some pixels inside the body
            ys, xs = np.nonzero(ch.any(-1))
            y, x = int(ys.max()) + 1 - M + int(rng.integers(0, 2)), int(xs.max()) + 1 - M + int(rng.integers(0, 2))
            for _ in range(int(rng.integers(1, 3))):
                dets.append((float(rng.uniform(0.05, 1.0)), x, y, ch))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            dets.append(
                (
                    float(rng.uniform(0.05, 1.0)),
                    int(rng.integers(0, W - M)),
                    int(rng.integers(0, H - M)),
                    stick(int(rng.integers(0, H - M)), int(rng.integers(0, W - M))),
                )
            )
        out.append(with_detections(sc, dets))
    return out


def ours(dumps):
    return evaluate(dumps).summary["parsing"]


def assert_parity(dumps):
    want, got = reference_figures(dumps), ours(dumps)
    for key in REFERENCE_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    ious = [got["IoU_background"]] + [got["IoU_per_part"][n] for n in constants.CHANNELS[1:]]
    np.testing.assert_allclose(np.array(ious, dtype=float), want["IoU"], atol=1e-9)
    return want


# --------------------------------------------------------------------------- tests
def test_priority_is_the_documented_one():
    assert tuple(constants.CHANNEL_INDEX[n] for n in PRIORITY) == paste.PART_PRIORITY


def test_hand_built_dumps_match_the_reference():
    want = assert_parity(hand_dumps())
    for key in REFERENCE_KEYS:  # the case is neither trivially perfect nor empty
        assert 0.1 < want[key] < 0.95, (key, want[key])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_dumps_match_the_reference(seed):
    want = assert_parity(random_dumps(seed))
    assert 0 < want["APp50"] < 1 and 0 < want["PCP50"] < 1


def test_perfect_predictions_score_one():
    hand = [perfect(d) for d in hand_dumps()]
    boxes = [(6, 14, 42, 50), (50, 10, 86, 46)]
    stick_scenes = [scenes.make_scene(64, 96, boxes, seed=i) for i in range(2)]
    for dumps in (hand, [dict(s, **scenes.perfect_predictions(s, 36)) for s in stick_scenes]):
        got = ours(dumps)
        for key in REFERENCE_KEYS + ("IoU_background",):
            assert got[key] == pytest.approx(1.0), key
        assert all(v == pytest.approx(1.0) for v in got["IoU_per_part"].values())
    assert all(reference_figures(hand)[k] == pytest.approx(1.0) for k in REFERENCE_KEYS)


def test_thresholds_are_strict():
    # one person; the prediction misses half the head: head IoU exactly 0.5 is not a correct part
    a = stick(4, 4, rim=False)
    p = a.copy()
    p[4:8, 9:12, 1] = False
    p[..., 0] = p[..., 1:].any(-1)
    got = ours([with_detections(scene([a]), [(0.9, 4, 4, p)])])
    assert got["IoU_per_part"]["head"] == pytest.approx(0.5)
    assert got["APp50"] == pytest.approx(1.0) and got["PCP50"] == pytest.approx(5 / 6)
    # a person of head and torso, 16 px each, predicted all torso: classes background 1, head 0,
    # torso 0.5, so the person IoU is exactly 0.5: not a match at 0.5, a match at 0.4
    b = np.zeros((H, W, K), bool)
    rect(b, 1, 4, 8, 8, 12)
    rect(b, 2, 8, 12, 8, 12)
    b[..., 0] = b[..., 1:].any(-1)
    q = np.zeros_like(b)
    q[4:12, 8:12, 0] = q[4:12, 8:12, 2] = True
    dump = with_detections(scene([b]), [(0.9, 0, 0, q)])
    want = reference_figures([dump])
    got = ours([dump])
    assert got["APp50"] == want["APp50"] == 0.0 and got["APp_vol"] == pytest.approx(4 / 9)
    assert got["mIoU"] == pytest.approx(0.5)


def test_empty_predictions_score_background_only():
    sc = hand_dumps()[0]
    got = ours([dict(sc, **scenes.empty_predictions(M))])
    bg = got["IoU_background"]
    assert 0 < bg < 1 and got["mIoU"] == pytest.approx(bg / 7)
    assert got["APp50"] == 0.0 and got["PCP50"] == 0.0


def test_unannotated_parts_and_body_only_people():
    pred = perfect(scene([stick(2, 2), stick(20, 30)]))  # predicts every part of both people
    valid, parts = pred["gt_valid"].copy(), pred["gt_parts"].copy()
    valid[0, [3, 4]] = 0  # a: arms not annotated (stored as zeros)
    parts[0] &= np.uint8(~((1 << 3) | (1 << 4)) & 0xFF)
    valid[1, 1:] = 0  # b: body only (e.g. a COCO person)
    parts[1] &= np.uint8(1)
    got = ours([dict(pred, gt_valid=valid, gt_parts=parts)])
    for key in REFERENCE_KEYS:
        assert got[key] == pytest.approx(1.0), key  # neither a miss nor a false positive
    # b's detection first: at 0.5 it matches nobody and is left out, not a false positive (at
    # t <= 0.2 it takes a, whose IoU with it is the background's share: the reference's way)
    got = ours([dict(pred, gt_valid=valid, gt_parts=parts, scores=pred["scores"][::-1].copy())])
    assert got["APp50"] == pytest.approx(1.0) and got["PCP50"] == pytest.approx(1.0)
    assert got["IoU_per_part"]["left_arm"] is None and got["IoU_per_part"]["head"] == pytest.approx(1.0)
    valid[0, 1:] = 0
    got = ours([dict(pred, gt_valid=valid, gt_parts=parts & np.uint8(1))])  # no part annotated anywhere
    assert got["APp50"] is None and got["PCP50"] is None and got["IoU_per_part"]["head"] is None
    assert got["mIoU"] == pytest.approx(got["IoU_background"])
