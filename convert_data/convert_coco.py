"""Converts COCO person keypoints (body masks + 15 joints mapped from COCO-17) to schema-v1 TFRecords.

  python convert_data/convert_coco.py --root data/coco --split val2017 --out data/records/coco_val2017
"""
from absl import flags

from maskrcnn_body.convert import cli
from maskrcnn_body.convert.coco import CocoConverter

cli.define_common_flags()
flags.DEFINE_bool("keep_negatives", False, "Also write images without persons (as negatives).")
flags.DEFINE_bool("keep_crowd_images", False, "Write images that have iscrowd regions (the crowd is left "
                  "out; schema v1 has no ignore regions). Default: skip those images.")


def build(f):
    return CocoConverter(f.root, split=f.split, keep_negatives=f.keep_negatives,
                         keep_crowd_images=f.keep_crowd_images)


if __name__ == "__main__":
    cli.run(build)
