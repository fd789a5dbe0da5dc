"""Trains maskrcnn_body; with no arguments: synthetic data -> CPU model -> evaluation table.

The same as `maskrcnn-body train` (flags: python train/train.py --help)."""

import sys

try:
    from maskrcnn_body.cli import script_main
except ImportError as e:  # run `make` (pip install -e .) first
    sys.exit(f"error: cannot import maskrcnn_body ({e}); install it first: make (or pip install -e .)")

if __name__ == "__main__":
    sys.exit(script_main("train", None))
