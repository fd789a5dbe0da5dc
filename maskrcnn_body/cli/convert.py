"""Convert a dataset, as it ships, to schema-v1 TFRecords (docs/DATASETS.md).

    maskrcnn-body convert pascal_part --root data/pascal_part --out data/records/pascal_part_train --split train
    maskrcnn-body convert jhmdb --root data/jhmdb --split train1 --out data/records/jhmdb_train1
    maskrcnn-body convert coco --root data/coco --split train2017 --out data/records/coco_train
    maskrcnn-body convert densepose_coco --root data/densepose_coco --split train --out data/records/densepose_train
    maskrcnn-body convert custom --input labels/ --out data/records/mine_train [--check]
    maskrcnn-body convert legacy --input 'old/*.tfrecord' --dataset jhmdb --out data/records/jhmdb_legacy

Every converter writes atomic shards PREFIX-0000i-of-0000K.tfrecord and PREFIX.summary.json, shows
progress, skips bad input with its reason (--strict: the first one is an error) and exits 1 when
nothing was converted.
"""

from __future__ import annotations

import argparse
import os
import sys

from maskrcnn_body.cli.args import Parser, add_bool, positive_int


def _common(p, dataset_root: bool = True, default_split: str = "all") -> None:
    if dataset_root:
        p.add_argument("--root", required=True, help="Dataset root directory, laid out as the dataset ships.")
        p.add_argument(
            "--split",
            default=default_split,
            help="Split to convert (the dataset's own names); 'all' = everything annotated.",
        )
    p.add_argument(
        "--out", required=True, help="Output prefix: writes PREFIX-0000i-of-0000K.tfrecord and PREFIX.summary.json."
    )
    p.add_argument("--num_shards", type=positive_int, default=1, help="Number of output shards.")
    p.add_argument("--num_workers", type=positive_int, default=1, help="Worker processes (1 = this process).")
    add_bool(p, "strict", False, "Stop at the first bad input instead of skipping it")
    add_bool(p, "progress", True, "Show a progress bar on stderr")


def _pascal_part(p):
    _common(p)
    add_bool(p, "keep_negatives", False, "Also write images without persons (as negatives)")

    def build(a):
        from maskrcnn_body.convert.pascal_part import PascalPartConverter

        return PascalPartConverter(a.root, split=a.split, keep_negatives=a.keep_negatives)

    return build


def _jhmdb(p):
    _common(p)

    def build(a):
        from maskrcnn_body.convert.jhmdb import JhmdbConverter

        return JhmdbConverter(a.root, split=a.split)

    return build


def _ade20k(p):
    _common(p)
    p.add_argument(
        "--index",
        default=None,
        help="2016 layout: index_ade20k.mat (objectnames) to resolve class "
        "ids by name; default: ROOT/index_ade20k.mat or ROOT/*/index_ade20k.mat when present, else "
        "the _atr.txt names are used.",
    )
    add_bool(
        p,
        "derive_torso",
        False,
        "Fill an unannotated torso with the largest blob of body minus the "
        "other parts (else the torso channel is marked unknown)",
    )
    add_bool(p, "keep_negatives", False, "Also write images without persons (as negatives)")

    def build(a):
        from maskrcnn_body.convert.ade20k import Ade20kConverter

        return Ade20kConverter(
            a.root, split=a.split, index=a.index, derive_torso=a.derive_torso, keep_negatives=a.keep_negatives
        )

    return build


def _chalearn(p):
    _common(p)
    p.add_argument(
        "--frame_step", type=positive_int, default=1, help="Keep frames 1, 1+step, 1+2*step, ... of each sequence."
    )

    def build(a):
        from maskrcnn_body.convert.chalearn import ChalearnConverter

        return ChalearnConverter(a.root, split=a.split, frame_step=a.frame_step)

    return build


def _coco_family(module: str, converter: str):
    """Flags + builder of a COCO-format converter (COCO person keypoints, DensePose-COCO): the same flags."""

    def flags(p):
        _common(p)
        add_bool(p, "keep_negatives", False, "Also write images without persons (as negatives)")
        add_bool(
            p,
            "keep_crowd_images",
            False,
            "Write images that have iscrowd regions (the crowd is left out; "
            "schema v1 has no ignore regions). Default: skip those images",
        )

        def build(a):
            import importlib

            cls = getattr(importlib.import_module(module), converter)
            return cls(a.root, split=a.split, keep_negatives=a.keep_negatives, keep_crowd_images=a.keep_crowd_images)

        return build

    return flags


_coco = _coco_family("maskrcnn_body.convert.coco", "CocoConverter")
_densepose_coco = _coco_family("maskrcnn_body.convert.densepose_coco", "DensePoseCocoConverter")


def _custom(p):
    _common(p, dataset_root=False)
    p.add_argument(
        "--input",
        required=True,
        help="Annotation files of the maskrcnn_body/annotations format (docs/DATASETS.md, 'Your own "
        "annotations'): JSON files, folders of them or globs, comma-separated.",
    )
    add_bool(p, "check", False, "Only validate the files (every problem is listed) and write nothing")
    p.add_argument(
        "--cvat",
        default=None,
        metavar="XML",
        help="A CVAT 'CVAT for images 1.1' export (annotations.xml): first written in this format to --input "
        "(one JSON file), then validated and converted like any other (docs/TRAINING.md, 'Your own annotations').",
    )
    p.add_argument("--cvat_images", default=".", help="With --cvat: the folder of the exported images.")

    def build(a):
        import json

        from maskrcnn_body.convert import custom

        if a.cvat:
            data = custom.from_cvat_xml(a.cvat, a.cvat_images, os.path.dirname(os.path.abspath(a.input)))
            os.makedirs(os.path.dirname(os.path.abspath(a.input)), exist_ok=True)
            with open(a.input, "w") as f:
                json.dump(data, f, indent=1)
            print(f"{a.cvat}: {len(data['images'])} images written to {a.input}")
        files = custom.expand_inputs(a.input)
        images, persons, problems = custom.validate_files(files)
        if problems:
            raise custom.AnnotationFileError(
                [f"{len(problems)} problem(s) in the annotation files; nothing was converted:", *problems]
            )
        print(f"{len(files)} annotation file(s) valid: {images} images, {persons} persons")
        return None if a.check else custom.CustomConverter(a.input)

    return build


def _legacy(p):
    _common(p, dataset_root=False)
    p.add_argument("--input", required=True, help="Legacy TFRecord file glob(s), comma-separated.")
    p.add_argument("--dataset", required=True, help="Dataset the records came from (image/dataset of the output).")
    add_bool(p, "bgr", False, "Images were stored in BGR order (legacy JHMDB, ADE20K, ChaLearn: read with cv2)")
    p.add_argument(
        "--valid_channels",
        default="0,1,2,3,4,5,6",
        help="Channels the legacy records annotate, comma-separated; '0' for the body-only legacy "
        "VOC/JHMDB records (default: %(default)s).",
    )
    p.add_argument(
        "--compression", default="ZLIB", choices=["ZLIB", "GZIP", "NONE"], help="Compression of the legacy files."
    )
    p.add_argument(
        "--keypoint_range", type=float, default=1.0, help="Half-range the legacy converter normalised keypoints to."
    )

    def build(a):
        from maskrcnn_body.convert.legacy import LegacyConverter

        return LegacyConverter(
            a.input,
            a.dataset,
            bgr=a.bgr,
            valid_channels=[int(c) for c in a.valid_channels.split(",") if c.strip()],
            compression="" if a.compression == "NONE" else a.compression,
            keypoint_range=a.keypoint_range,
        )

    return build


DATASETS = {
    "pascal_part": (_pascal_part, "Pascal-Part: persons with 24 part names -> 6 parts, subject's sides"),
    "jhmdb": (_jhmdb, "JHMDB: puppet masks, 15 joints, parts from puppet_flow when present"),
    "ade20k": (_ade20k, "ADE20K (2016/2017 and 2021 layouts): person instances with parts"),
    "chalearn": (_chalearn, "ChaLearn LAP 2014 Track 1: 14 limb masks -> 6 parts"),
    "coco": (_coco, "COCO person keypoints: body masks + 17 -> 15 joints"),
    "densepose_coco": (
        _densepose_coco,
        "DensePose-COCO: 14 dp_masks -> 6 sided parts, body = segmentation + parts, 17 -> 15 joints; "
        "splits train, valminusminival, minival",
    ),
    "custom": (_custom, "Your own annotations (maskrcnn_body/annotations JSON, version 1): validate + convert"),
    "legacy": (_legacy, "The 2017 project's TFRecords -> schema v1"),
}


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="dataset", metavar="DATASET", parser_class=Parser)
    sub.required = True
    for name, (define, summary) in DATASETS.items():
        dp = sub.add_parser(
            name, help=summary, description=summary, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        dp.set_defaults(_build=define(dp))


def run(args) -> int:
    from maskrcnn_body.data import conversion

    converter = args._build(args)
    if converter is None:  # a check-only run
        return 0
    try:
        summary = conversion.run_conversion(
            converter,
            args.out,
            num_shards=args.num_shards,
            num_workers=args.num_workers,
            strict=args.strict,
            progress=args.progress,
        )
    except conversion.ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary.text())
    print(f"summary: {conversion.summary_path(args.out)}")
    if summary.images_written == 0:
        print("error: nothing was converted (see the skipped reasons above)", file=sys.stderr)
        return 1
    return 0
