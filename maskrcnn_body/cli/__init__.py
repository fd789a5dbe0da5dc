"""The command line: ``maskrcnn-body COMMAND`` (see :mod:`maskrcnn_body.cli.main`)."""

from maskrcnn_body.cli.main import COMMANDS, main, script_main

__all__ = ["COMMANDS", "main", "script_main"]
