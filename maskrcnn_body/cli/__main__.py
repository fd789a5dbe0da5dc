"""``python -m maskrcnn_body.cli COMMAND``: the same as ``maskrcnn-body COMMAND``."""

import sys

from maskrcnn_body.cli.main import main

sys.exit(main())
