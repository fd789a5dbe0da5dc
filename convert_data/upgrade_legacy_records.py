"""Upgrades TFRecords of the 2017 project (ZLIB, raw pixels, (N,H,W,7) masks) to schema v1.

  python convert_data/upgrade_legacy_records.py --input 'old/out_jhmdb*.tfrecord' --dataset jhmdb --bgr \
      --valid_channels 0 --out data/records/jhmdb_legacy
See maskrcnn_body/convert/legacy.py for the legacy keys and the keypoint de-normalisation.
"""
from absl import flags

from maskrcnn_body.convert import cli
from maskrcnn_body.convert.legacy import LegacyConverter

cli.define_common_flags(dataset_root=False)
flags.DEFINE_string("input", None, "Legacy TFRecord file glob(s), comma-separated.", required=True)
flags.DEFINE_string("dataset", None, "Dataset the records came from (image/dataset of the output).",
                    required=True)
flags.DEFINE_bool("bgr", False, "Images were stored in BGR order (legacy JHMDB, ADE20K, ChaLearn: read with cv2).")
flags.DEFINE_list("valid_channels", ["0", "1", "2", "3", "4", "5", "6"],
                  "Channels the legacy records annotate; '0' for the body-only legacy VOC/JHMDB records.")
flags.DEFINE_enum("compression", "ZLIB", ["ZLIB", "GZIP", "NONE"], "Compression of the legacy files.")
flags.DEFINE_float("keypoint_range", 1.0, "Half-range the legacy converter normalised keypoints to.")


def build(f):
    return LegacyConverter(f.input, f.dataset, bgr=f.bgr, valid_channels=[int(c) for c in f.valid_channels],
                           compression="" if f.compression == "NONE" else f.compression,
                           keypoint_range=f.keypoint_range)


if __name__ == "__main__":
    cli.run(build)
