"""Converts your own annotations (docs/DATASETS.md) to schema-v1 TFRecords. Same as `maskrcnn-body convert custom`."""

import sys

try:
    from maskrcnn_body.cli import script_main
except ImportError as e:  # run `make` (pip install -e .) first
    sys.exit(f"error: cannot import maskrcnn_body ({e}); install it first: make (or pip install -e .)")

if __name__ == "__main__":
    sys.exit(script_main("convert", ["custom", *sys.argv[1:]]))
