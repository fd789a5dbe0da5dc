"""``maskrcnn-body``: one command line with a subcommand per task.

    maskrcnn-body train      [--preset cpu_small] [--set SECTION.FIELD=VALUE ...]
    maskrcnn-body evaluate   --train_dir DIR --records GLOB
    maskrcnn-body calibrate  --model DIR --records GLOB
    maskrcnn-body predict    --model DIR --input photo.jpg folder/ clip.mp4 --output OUT/
    maskrcnn-body export     --train_dir DIR --saved_model DIR [--tflite FILE]
    maskrcnn-body serve      --train_dir DIR [--port 8080]
    maskrcnn-body convert    DATASET --root DIR --out PREFIX
    maskrcnn-body synth      --out data/records/synthetic
    maskrcnn-body metric     --dumps DIR
    maskrcnn-body draw       --dumps DIR --out_dir DIR
    maskrcnn-body client     --server URL --input photo.jpg

Each command module (``maskrcnn_body/cli/<name>.py``) has ``add_arguments(parser)`` and
``run(args) -> int`` and imports TensorFlow only inside ``run``, so ``--help`` is instant. The
original scripts (``python train/train.py`` ...) call :func:`script_main` with their command.

Exit codes: 0 success; 1 the work failed (training diverged, nothing converted, ...); 2 a problem
the user can fix (bad flag, missing file, invalid config value), printed as one ``error:`` line; 70 an
error that is not the user's (a bug): its traceback, then where to report it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional, Sequence

from maskrcnn_body.cli.args import HelpFormatter, Parser
from maskrcnn_body.errors import EXIT_BUG, EXIT_USER_ERROR, REPORT_HINT, UserError

COMMANDS = (
    "train",
    "evaluate",
    "calibrate",
    "predict",
    "export",
    "serve",
    "convert",
    "synth",
    "metric",
    "draw",
    "client",
)


def _module(name: str):
    return importlib.import_module(f"maskrcnn_body.cli.{name}")


def _summary(module) -> str:
    """The first paragraph of a command module's docstring, on one line (the whole sentence, however
    many source lines it spans): the command's line in ``maskrcnn-body --help``."""
    paragraph = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split())


def build_parser(commands: Sequence[str] = COMMANDS) -> Parser:
    from maskrcnn_body.version import __version__

    parser = Parser(
        prog="maskrcnn-body",
        description="Multi-person body-part segmentation (7 channels) and 15 keypoints with one Keras Mask R-CNN.",
    )
    parser.add_argument("--version", action="version", version=f"maskrcnn-body {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in commands:
        module = _module(name)
        p = sub.add_parser(
            name,
            help=_summary(module),
            description=module.__doc__,
            formatter_class=HelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _user_errors():
    """Exception types that mean "the user can fix this" (no traceback, exit 2)."""
    from maskrcnn_body.config import ConfigError

    return (UserError, ConfigError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def run_command(args) -> int:
    """Runs a parsed command, turning user errors into one ``error:`` line and exit code 2."""
    try:
        code = args._run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:  # not the user's: keep the traceback, say where to report it
        import traceback

        traceback.print_exc()
        print(f"\ninternal error: {REPORT_HINT}", file=sys.stderr)
        return EXIT_BUG
    return int(code or 0)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``maskrcnn-body`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        parser = build_parser([argv[0]])  # import only the command that runs
    else:
        parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args)


def script_main(command: str, argv: Optional[List[str]] = None) -> int:
    """For the original scripts: ``python train/train.py ARGS`` = ``maskrcnn-body train ARGS``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main([command, *argv])


if __name__ == "__main__":
    sys.exit(main())
