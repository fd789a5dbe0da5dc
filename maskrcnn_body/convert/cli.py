"""absl flags shared by every ``convert_data/convert_<name>.py`` script, and their main().

Common flags: ``--root`` (dataset root as it ships), ``--split`` (the dataset's own split
names, ``all`` = everything annotated), ``--out`` (shard prefix), ``--num_shards``,
``--num_workers``, ``--strict``, ``--progress``. A script defines its own extra flags, then
calls ``cli.run(build_converter)`` where ``build_converter(FLAGS) -> Converter``.

Exit status: 0 when at least one image was written, 1 when nothing was converted, 2 on a
strict-mode error (message on stderr).
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags

from maskrcnn_body.convert import common

FLAGS = flags.FLAGS
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # also inherited by the workers


def define_common_flags(default_split: str = "all", dataset_root: bool = True) -> None:
    """Defines the shared flags; ``dataset_root=False`` leaves out --root/--split (legacy upgrade)."""
    if dataset_root:
        flags.DEFINE_string("root", None, "Dataset root directory, laid out as the dataset ships.")
        flags.DEFINE_string("split", default_split, "Split to convert (the dataset's own names); "
                            "'all' = everything annotated.")
        flags.mark_flag_as_required("root")
    flags.DEFINE_string("out", None, "Output prefix: writes PREFIX-0000i-of-0000K.tfrecord and "
                        "PREFIX.summary.json.")
    flags.DEFINE_integer("num_shards", 1, "Number of output shards.", lower_bound=1)
    flags.DEFINE_integer("num_workers", 1, "Worker processes (1 = convert in this process).", lower_bound=1)
    flags.DEFINE_bool("strict", False, "Stop at the first bad input instead of skipping it.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    flags.mark_flag_as_required("out")


def main(build_converter: Callable[[flags.FlagValues], common.Converter]) -> int:
    """Builds the converter from the flags, runs it, prints the summary; returns the exit code."""
    try:
        converter = build_converter(FLAGS)
        summary = common.run_conversion(converter, FLAGS.out, num_shards=FLAGS.num_shards,
                                        num_workers=FLAGS.num_workers, strict=FLAGS.strict,
                                        progress=FLAGS.progress)
    except (common.ConversionError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary.text())
    print(f"summary: {common.summary_path(FLAGS.out)}")
    if summary.images_written == 0:
        print("error: nothing was converted (see the skipped reasons above)", file=sys.stderr)
        return 1
    return 0


def run(build_converter: Callable[[flags.FlagValues], common.Converter]) -> None:
    """``app.run`` entry point for a converter script."""
    app.run(lambda argv: sys.exit(main(build_converter)))
