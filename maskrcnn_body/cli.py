"""Shared plumbing of the command-line scripts (imports no TensorFlow).

Scripts define ``run() -> int`` and use ``main = main_with_user_errors(run)`` with ``app.run(main)``:
problems with the user's inputs (:class:`UserError`, missing files, invalid values) end the
script with ``error: <message>`` and exit code 1 instead of a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable


class UserError(RuntimeError):
    """Something the user can fix (a path, a file, a flag); printed without a traceback."""


USER_ERRORS = (UserError, FileNotFoundError, ValueError)


def main_with_user_errors(run: Callable[[], int]) -> Callable:
    def main(argv):
        del argv
        try:
            return run()
        except USER_ERRORS as e:
            sys.exit(f"error: {e}")
    return main
