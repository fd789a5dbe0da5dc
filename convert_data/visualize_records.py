"""Draw the ground truth of TFRecords (parts, boxes, skeleton) to PNGs, with the evaluation drawing code.

  python convert_data/visualize_records.py --records 'data/train-*.tfrecord' --out_dir DIR [--max N]

One PNG per record, named ``<index>_<dataset>_<source_id>.png``. Unannotated channels
(``person/parts_valid`` = 0) are not drawn; joints are drawn where v > 0.
"""
import os

from absl import app, flags

from maskrcnn_body.cli import main_with_user_errors
from maskrcnn_body.data import schema, writer
from maskrcnn_body.drawing import draw

FLAGS = flags.FLAGS
flags.DEFINE_string("records", None, "TFRecord glob(s), comma-separated.", required=True)
flags.DEFINE_string("out_dir", None, "Directory for the PNGs.", required=True)
flags.DEFINE_integer("max", 0, "Draw at most this many records (0 = all).")
flags.DEFINE_integer("min_size", 256, "Magnify small images so the shorter side is at least this.")


def visualize(records, out_dir: str, max_records: int = 0, min_size: int = 256) -> list:
    """Draws records matching ``records`` into ``out_dir``; returns the PNG paths."""
    os.makedirs(out_dir, exist_ok=True)
    out = []
    for path, index, serialized in writer.iterate_records(records):
        if max_records and len(out) >= max_records:
            break
        rec = schema.decode_example(serialized, f"{path}[{index}]", decode_image=True)
        name = draw.safe_file_name(f"{len(out):05d}_{rec.dataset}_{rec.source_id}")
        pic = draw.render_record(rec, min_size)
        out.append(os.path.join(out_dir, name + ".png"))
        pic.save(out[-1])
    return out


def run():
    paths = visualize(FLAGS.records, FLAGS.out_dir, FLAGS.max, FLAGS.min_size)
    print(f"wrote {len(paths)} pictures to {FLAGS.out_dir}")


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
