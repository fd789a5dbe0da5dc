"""Error types shared by every layer (imports nothing).

:class:`UserError` marks problems the user can fix (a path, a file, a flag, a config value): the
command line prints its message without a traceback and exits with :data:`EXIT_USER_ERROR`.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_BUG = 70  # EX_SOFTWARE (sysexits.h): an internal error
REPORT_HINT = (
    "this is not an error in your input but in maskrcnn_body: please report it with the command and the "
    "traceback above (the project's issue tracker; `maskrcnn-body --version` names the version)"
)
"""What the command line prints under the traceback of an error that is not the user's."""


class UserError(RuntimeError):
    """Something the user can fix (a path, a file, a flag); printed without a traceback."""


class InvalidArgument(UserError, ValueError):
    """A value the user chose (a flag, a config field, an argument) that cannot work; the message says which
    values can. Also a ValueError, for Python callers."""


class MissingDependency(UserError, ImportError):
    """An optional package (an extra of pyproject.toml) that a feature needs is not installed."""


def optional_import(module: str, extra: str, purpose: str):
    """``module``, imported; a :class:`MissingDependency` naming the extra to install when it is not.

    Args:
      module: the dotted module to import (``"scipy.io"``).
      extra: the pyproject.toml extra that installs it (``pip install "maskrcnn_body[EXTRA]"``).
      purpose: what needs it, as the start of a sentence (``"reading .mat annotations"``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = (e.name or module).split(".")[0]
        if missing != module.split(".")[0]:
            raise  # the package is there but one of its own dependencies is not: its error says which
        raise MissingDependency(
            f'{purpose} needs {missing}, which is not installed: pip install "maskrcnn_body[{extra}]"'
        ) from None
