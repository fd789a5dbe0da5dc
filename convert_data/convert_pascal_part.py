"""Converts Pascal-Part (persons with 6 parts) to schema-v1 TFRecords.

  python convert_data/convert_pascal_part.py --root data/pascal_part --out data/records/pascal_part_train \
      --split train --num_shards 4 --num_workers 2
"""
from absl import flags

from maskrcnn_body.convert import cli
from maskrcnn_body.convert.pascal_part import PascalPartConverter

cli.define_common_flags()
flags.DEFINE_bool("keep_negatives", False, "Also write images without persons (as negatives).")


def build(f):
    return PascalPartConverter(f.root, split=f.split, keep_negatives=f.keep_negatives)


if __name__ == "__main__":
    cli.run(build)
