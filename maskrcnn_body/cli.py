"""Shared plumbing of the command-line scripts (imports no TensorFlow).

Scripts define ``run() -> int`` and use ``main = main_with_user_errors(run)`` with ``app.run(main)``:
problems with the user's inputs (:class:`UserError`, missing files, invalid values) end the
script with ``error: <message>`` on stderr and exit code 2 (as the converters' setup errors) instead
of a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable


class UserError(RuntimeError):
    """Something the user can fix (a path, a file, a flag); printed without a traceback."""


USER_ERRORS = (UserError, FileNotFoundError, ValueError)
EXIT_USER_ERROR = 2


def main_with_user_errors(run: Callable[[], int]) -> Callable:
    def main(argv):
        del argv
        try:
            return run()
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USER_ERROR
    return main
