"""Error types shared by every layer (imports nothing).

:class:`UserError` marks problems the user can fix (a path, a file, a flag, a config value): the
command line prints its message without a traceback and exits with :data:`EXIT_USER_ERROR`.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(RuntimeError):
    """Something the user can fix (a path, a file, a flag); printed without a traceback."""
