"""argparse helpers shared by every command: absl-compatible flag spellings, typed values.

The original scripts used absl flags, so the spellings users know keep working: ``--flag=value``
and ``--flag value``, ``--flag`` / ``--noflag`` for booleans, repeatable list flags that also take
comma-separated values, and ``--helpfull`` (same as ``--help``).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` that answers ``--helpfull`` like ``--help`` and exits with code 2 and a
    one-line ``error:`` message on bad flags (as the rest of the command line)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        args = ["--help" if a == "--helpfull" else a for a in args]
        return super().parse_known_args(args, namespace)


def add_bool(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """``--name`` / ``--noname`` / ``--name=true|false``."""
    dest = name.replace("-", "_")

    def parse(text: str) -> bool:
        t = text.strip().lower()
        if t in ("1", "true", "yes", "on"):
            return True
        if t in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")

    p.add_argument(
        f"--{name}",
        dest=dest,
        nargs="?",
        const=True,
        default=default,
        type=parse,
        help=f"{help} (default: {default}; --no{name} to disable)",
    )
    p.add_argument(f"--no{name}", dest=dest, action="store_false", help=argparse.SUPPRESS)


def add_list(
    p: argparse.ArgumentParser, name: str, default: Optional[Sequence[str]], help: str, metavar: str = "VALUE"
) -> None:
    """A repeatable flag whose values may also be comma-separated; the result is a flat list."""
    p.add_argument(
        f"--{name}",
        dest=name.replace("-", "_"),
        action="append",
        default=None,
        metavar=metavar,
        help=f"{help} (repeatable or comma-separated; default: {list(default) if default else 'none'})",
    )
    p.set_defaults(**{f"_{name.replace('-', '_')}_default": list(default or [])})


def list_value(args: argparse.Namespace, name: str) -> List[str]:
    """The flat list of a :func:`add_list` flag (its default when not given)."""
    values = getattr(args, name)
    if values is None:
        return list(getattr(args, f"_{name}_default"))
    return [v for item in values for v in item.split(",") if v]


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """``--backend``, ``--threads``, ``--precision``, ``--device``: how ``predict`` and ``serve`` run a model
    (``maskrcnn_body.inference.backends``; README, "Backends")."""
    p.add_argument(
        "--backend",
        default="auto",
        help="auto, tensorflow, onnxruntime, openvino or tflite "
        '(README, "Backends"; a training directory is exported once, cached, for the non-TensorFlow ones) '
        "(default: %(default)s).",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of the onnxruntime, openvino and tflite backends (default: all cores).",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16"),
        help="bfloat16: tensorflow (training directory) or openvino in bfloat16, several times faster "
        "on CPUs with AMX / AVX512-BF16 (default: %(default)s).",
    )
    add_device_argument(p)


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device``: where the backend runs (``maskrcnn_body.inference.backends.DEVICES``; docs/DEPLOY.md)."""
    p.add_argument(
        "--device",
        default=None,
        help="cpu, cuda[:N] or gpu[:N] (tensorflow; onnxruntime with onnxruntime-gpu), tensorrt[:N] "
        "(onnxruntime), gpu[:N] or npu (openvino); an absent device is an error that says what to install "
        "(default: the CPU; tensorflow uses its GPU when it sees one).",
    )
