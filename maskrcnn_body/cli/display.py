"""Can this process open a window? (``--show`` in ``predict`` and ``client``; no TensorFlow.)

Showing drawings needs two things that a server or a container usually lacks: OpenCV built with a GUI
(``opencv-python``, the ``[gui]`` extra; the ``[video]`` extra's ``opencv-python-headless`` has none) and a
display (``DISPLAY`` or ``WAYLAND_DISPLAY`` on Linux). :func:`require_window` checks both before any work
starts and says what to do, instead of a traceback from ``cv2.imshow`` after the model has loaded.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Optional

from maskrcnn_body.errors import UserError

GUI_INSTALL = 'pip uninstall -y opencv-python-headless && pip install "maskrcnn_body[gui]"'


def opencv_gui_backend(build_information: str) -> Optional[str]:
    """The GUI backend named in ``cv2.getBuildInformation()`` (e.g. ``"GTK3"``, ``"QT5"``, ``"WIN32UI"``),
    or None for a headless build (``GUI: NONE``) or when the text names none."""
    m = re.search(r"^\s*GUI:\s*(\S+)", build_information, flags=re.MULTILINE)
    if m is None or m.group(1).upper() == "NONE":
        return None
    return m.group(1)


def require_window(flag: str = "--show") -> None:
    """Raises :class:`UserError` saying what to do unless OpenCV can open a window on a display here."""
    try:
        import cv2
    except ImportError as e:
        raise UserError(f"{flag} needs OpenCV with a GUI: {GUI_INSTALL}") from e
    if opencv_gui_backend(cv2.getBuildInformation()) is None:
        raise UserError(
            f"{flag} needs OpenCV with a GUI, but the installed one is headless (opencv-python-headless): "
            f"{GUI_INSTALL}; or drop {flag} and read the drawings written to the output folder"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError(
            f"{flag} needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set (a server or an SSH session "
            f"without -X?); drop {flag} and read the drawings written to the output folder"
        )
