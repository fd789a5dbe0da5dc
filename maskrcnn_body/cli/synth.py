"""Write the built-in synthetic multi-person dataset as TFRecord shards.

    maskrcnn-body synth --out data/records/synthetic --num_train 1000 --num_val 100

writes PREFIX_train-0000i-of-0000K.tfrecord, PREFIX_val-..., their PREFIX_{train,val}.summary.json
and the combined PREFIX.summary.json. The output is deterministic given --seed and --size
(independent of --num_shards/--num_workers); train and val use disjoint per-image seeds.
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_bool, positive_int
from maskrcnn_body.errors import InvalidArgument


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="Output prefix PREFIX (directories are created).")
    p.add_argument("--num_train", type=int, default=1000, help="Training images (default: %(default)s).")
    p.add_argument("--num_val", type=int, default=100, help="Validation images (default: %(default)s).")
    p.add_argument(
        "--num_calib",
        type=int,
        default=0,
        help="Calibration images (a held-out split for choosing the mask decoding; default: %(default)s).",
    )
    p.add_argument("--seed", type=int, default=0, help="Dataset seed (per-image seeds derive from it).")
    p.add_argument("--size", type=int, default=256, help="Images are SIZE x SIZE pixels (>= 32).")
    p.add_argument("--num_shards", type=positive_int, default=4, help="Shards per split.")
    p.add_argument("--num_workers", type=positive_int, default=None, help="Rendering processes (default: all cores).")
    add_bool(p, "progress", True, "Show a progress bar on stderr")


def run(args) -> int:
    from maskrcnn_body.convert import synthetic

    if args.size < 32 or min(args.num_train, args.num_val, args.num_calib) < 0:
        raise InvalidArgument("--size must be >= 32 and --num_train/--num_val/--num_calib >= 0")
    summary = synthetic.write_dataset(
        args.out,
        args.num_train,
        args.num_val,
        seed=args.seed,
        size=args.size,
        num_shards=args.num_shards,
        num_workers=args.num_workers,
        progress=args.progress,
        num_calib=args.num_calib,
    )
    for split, s in summary["splits"].items():
        print(
            f"{split}: {s['images_written']} images, {s['persons']} persons, "
            f"{s['negative_images']} without persons -> {s['out_prefix']}-*"
        )
    print(
        f"{summary['seconds']} s, {summary['images_per_second']} images/s; summary: {synthetic.summary_path(args.out)}"
    )
    return 0
