"""The inference server: `python train/serve.py` = `maskrcnn-body serve` (`train/test.py` is its original name)."""

import sys

try:
    from maskrcnn_body.cli import script_main
except ImportError as e:  # run `make` (pip install -e .) first
    sys.exit(f"error: cannot import maskrcnn_body ({e}); install it first: make (or pip install -e .)")

if __name__ == "__main__":
    sys.exit(script_main("serve", None))
