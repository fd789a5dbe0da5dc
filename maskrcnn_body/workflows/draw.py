"""The draw workflow: PNG files of the ground truth of records and of the predictions in evaluation dumps
(``maskrcnn-body draw`` is these functions with flags; pictures by :mod:`maskrcnn_body.drawing.people`)."""

from __future__ import annotations

import os
from typing import List


def draw_records(records, out_dir: str, max_records: int = 0, min_size: int = 256) -> List[str]:
    """Draws the ground truth of records matching ``records`` into ``out_dir``; returns the PNG paths."""
    from maskrcnn_body.data import schema, writer
    from maskrcnn_body.drawing import people as draw
    from maskrcnn_body.utils.files import safe_file_name

    os.makedirs(out_dir, exist_ok=True)
    out: List[str] = []
    for path, index, serialized in writer.iterate_records(records):
        if max_records and len(out) >= max_records:
            break
        rec = schema.decode_example(serialized, f"{path}[{index}]", decode_image=True)
        name = safe_file_name(f"{len(out):05d}_{rec.dataset}_{rec.source_id}")
        out.append(os.path.join(out_dir, name + ".png"))
        draw.render_record(rec, min_size).save(out[-1])
    return out


def draw_dumps(
    dump_dir: str,
    out_dir: str,
    side_by_side: bool = False,
    score_threshold: float = 0.5,
    max_dumps: int = 0,
    min_size: int = 256,
) -> List[str]:
    """One PNG per dump in ``dump_dir``; returns the paths."""
    from maskrcnn_body.drawing import people as draw
    from maskrcnn_body.evaluation import dumps
    from maskrcnn_body.utils.files import safe_file_name

    paths = dumps.list_dumps(dump_dir)
    if max_dumps:
        paths = paths[:max_dumps]
    os.makedirs(out_dir, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        d = dumps.read_dump(p)
        out.append(os.path.join(out_dir, safe_file_name(f"{i:05d}_{d['source_id']}") + ".png"))
        draw.render_dump(d, side_by_side, score_threshold, min_size).save(out[-1])
    return out
