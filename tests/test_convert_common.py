"""Shared converter machinery: workers parity, strict mode, atomic replacement, summary, CLI end to end."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from maskrcnn_body.convert.pascal_part import PascalPartConverter
from maskrcnn_body.data import conversion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Toy(conversion.Converter):
    """Items 0..n-1; item 2 is bad input, item 3 has no persons (a filter)."""

    dataset = "synthetic"

    def __init__(self, n=5, fail_hard=False):
        self.n, self.fail_hard = n, fail_hard

    def items(self):
        return [conversion.Item(f"toy{i}", i) for i in range(self.n)]

    def convert(self, item):
        i = item.data
        if i == 2:
            raise conversion.SkipItem("corrupt image: toy2 is broken")
        if i == 3:
            yield conversion.Skipped(item.key, "no persons", bad=False)
            return
        if self.fail_hard and i == 4:
            raise RuntimeError("unexpected")
        body = np.zeros((4, 5), bool)
        body[1:3, 1:4] = True
        head = np.zeros((4, 5), bool)
        head[:2] = True  # row 0 lies outside the body
        img = conversion.image_from_array(np.full((4, 5, 3), 10 * i, np.uint8))
        yield img.record(item.key, self.dataset, [conversion.build_person(body, {1: head}, (0, 1))])


def test_summary_reasons_and_json(tmp_path):
    prefix = str(tmp_path / "t")
    s = conversion.run_conversion(_Toy(fail_hard=True), prefix, progress=False)
    d = json.load(open(prefix + ".summary.json"))
    assert (d["images_written"], d["persons"], d["skipped"], d["bad_inputs"]) == (2, 2, 3, 2)
    assert d["skipped_by_reason"] == {"corrupt image": 1, "error": 1, "no persons": 1}
    assert "RuntimeError: unexpected" in next(x["reason"] for x in d["skipped_items"] if x["key"] == "toy4")
    assert d["shards"] == [prefix + "-00000-of-00001.tfrecord"] and s.items == 5
    rec = conversion.load_records(prefix)[0]
    assert rec.persons[0].channel(1).sum() == 3 and rec.persons[0].channel(1)[1, 1:4].all()  # clipped to body


def test_strict_aborts_and_keeps_previous_output(tmp_path):
    prefix = str(tmp_path / "t")
    conversion.run_conversion(_Toy(n=2), prefix, num_shards=2, progress=False)
    before = {f: open(os.path.join(tmp_path, f), "rb").read() for f in os.listdir(tmp_path)}
    with pytest.raises(conversion.ConversionError, match="toy2: corrupt image"):
        conversion.run_conversion(_Toy(n=5), prefix, strict=True, progress=False)
    after = {f: open(os.path.join(tmp_path, f), "rb").read() for f in os.listdir(tmp_path)}
    assert after == before  # no temporary left, old shards and summary untouched


def test_workers_match_single_process(fixtures_dir, tmp_path):
    root = str(fixtures_dir / "pascal_part")
    conversion.run_conversion(PascalPartConverter(root), str(tmp_path / "w1"), progress=False)
    s = conversion.run_conversion(
        PascalPartConverter(root), str(tmp_path / "w2"), num_workers=2, num_shards=2, progress=False
    )
    assert s.images_written == 5 and len(s.shards) == 2
    one = {r.source_id: r for r in conversion.load_records(str(tmp_path / "w1"))}
    two = {r.source_id: r for r in conversion.load_records(str(tmp_path / "w2"))}
    assert one.keys() == two.keys()
    for k in one:
        assert one[k].image_bytes == two[k].image_bytes
        for a, b in zip(one[k].persons, two[k].persons):
            np.testing.assert_array_equal(a.parts, b.parts)


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "convert_data/convert_pascal_part.py", "--noprogress", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_cli_end_to_end(fixtures_dir, tmp_path):
    root = tmp_path / "pp"
    shutil.copytree(fixtures_dir / "pascal_part", root)
    out = str(tmp_path / "rec" / "pp")
    r = _cli("--root", str(root), "--out", out)
    assert r.returncode == 0, r.stderr
    assert "5 images written" in r.stdout and "13 persons" in r.stdout
    summary = json.load(open(out + ".summary.json"))
    assert summary["images_written"] == 5 and os.path.exists(out + "-00000-of-00001.tfrecord")
    # nothing to convert (only person-less images): exit 1, summary says why
    for f in ("2008_000652", "2008_000700", "2008_000726", "2008_003228", "2010_005243"):
        os.remove(root / "Annotations_Part" / f"{f}.mat")
    out2 = str(tmp_path / "rec" / "none")
    r = _cli("--root", str(root), "--out", out2)
    assert r.returncode == 1 and "nothing was converted" in r.stderr
    assert json.load(open(out2 + ".summary.json"))["skipped_by_reason"] == {"no persons": 3}
    # strict mode on bad input: exit 2, no final shard
    (root / "Annotations_Part" / "2008_001978.mat").write_bytes(b"garbage")
    r = _cli("--root", str(root), "--out", str(tmp_path / "rec" / "strict"), "--strict")
    assert r.returncode == 2 and "corrupt annotation" in r.stderr
    assert not [f for f in os.listdir(tmp_path / "rec") if f.startswith("strict")]
