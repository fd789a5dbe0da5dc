"""argparse helpers shared by every command: absl-compatible flag spellings, typed values.

The original scripts used absl flags, so the spellings users know keep working: ``--flag=value``
and ``--flag value``, ``--flag`` / ``--noflag`` for booleans, repeatable list flags that also take
comma-separated values, and ``--helpfull`` (same as ``--help``).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions kept as written (the command modules' docstrings); every option's help ends with
    its default, unless the text already states one (``%(default)s`` or the word "default") or there
    is nothing to show (``None``, an empty list, a suppressed default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text.lower()
            or default is None
            or default is argparse.SUPPRESS
            or (isinstance(default, (list, tuple)) and not default)
            or not action.option_strings
            or text == argparse.SUPPRESS
        ):
            return text
        text = text.rstrip()
        if text.endswith("."):
            return f"{text[:-1]} (default: %(default)s)."
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` that answers ``--helpfull`` like ``--help``, shows every default
    (:class:`HelpFormatter`), accepts the absl spellings of boolean flags (``--flag=true|false`` and
    ``--noflag`` besides ``--flag`` / ``--no-flag``, see :func:`add_bool`) and exits with code 2 and a
    one-line ``error:`` message on bad flags (as the rest of the command line)."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("formatter_class") in (None, argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter):
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        args = [self._absl_bool("--help" if a == "--helpfull" else a) for a in args]
        return super().parse_known_args(args, namespace)

    def _absl_bool(self, arg: str) -> str:
        """``--flag=true`` -> ``--flag``, ``--flag=false`` -> ``--no-flag`` for :func:`add_bool` flags."""
        name, eq, value = arg.partition("=")
        if not eq or not name.startswith("--"):
            return arg
        action = self._option_string_actions.get(name)
        if not isinstance(action, argparse.BooleanOptionalAction):
            return arg
        flag = _parse_bool(value)
        return name if flag else f"--no-{name[2:]}"


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_bool(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """A boolean flag: ``--name`` / ``--no-name`` (``argparse.BooleanOptionalAction``; help shows
    ``--name, --no-name`` and the default); the absl spellings ``--noname`` and ``--name=true|false``
    keep working (hidden)."""
    dest = name.replace("-", "_")
    p.add_argument(f"--{name}", dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help)
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
    (``maskrcnn_body.inference.backends``; docs/GUIDE.md, "Backends")."""
    p.add_argument(
        "--backend",
        default="auto",
        help="auto, tensorflow, onnxruntime, openvino or tflite "
        '(docs/GUIDE.md, "Backends"; a training directory is exported once, cached, for the non-TensorFlow ones) '
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


MODEL_FORMATS = "a training directory (config.json + checkpoints), a SavedModel directory, a .onnx or a .tflite file"


def add_model_argument(p: argparse.ArgumentParser, what: str = MODEL_FORMATS) -> None:
    """``--model`` (also spelled ``--train_dir``, the original scripts' name): the model a command reads, in
    every command that reads one (``evaluate``, ``predict``, ``export``, ``serve``); ``args.model``."""
    p.add_argument(
        "--model",
        "--train_dir",
        dest="model",
        default="output/mask_rcnn",
        help=f"The model: {what}; --train_dir is the same flag (default: %(default)s).",
    )
