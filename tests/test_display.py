"""`--show` says what to do when no window can be opened (headless OpenCV, no display), before any work."""

import pathlib
import subprocess
import sys

import pytest

from maskrcnn_body.cli import display
from maskrcnn_body.errors import UserError

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADLESS = "General configuration for OpenCV 4.10.0\n  GUI:                           NONE\n  Media I/O:\n"
GTK = "General configuration for OpenCV 4.10.0\n  GUI:                           GTK3\n    GTK+:  YES (ver 3.24)\n"


def test_gui_backend_parsed_from_build_information():
    assert display.opencv_gui_backend(HEADLESS) is None
    assert display.opencv_gui_backend(GTK) == "GTK3"
    assert display.opencv_gui_backend("no such section") is None


def test_headless_opencv_names_the_gui_extra(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: HEADLESS)
    with pytest.raises(UserError, match=r"headless.*maskrcnn_body\[gui\]"):
        display.require_window()


def test_no_display_is_a_clear_error(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: GTK)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="needs a display"):
        display.require_window()
    monkeypatch.setenv("DISPLAY", ":0")
    display.require_window()  # GUI build + display: no error


def test_predict_show_fails_fast_with_one_line(tmp_path):
    """The advertised `predict --webcam 0 --show` on a headless install: a one-line error, exit 2, no traceback
    (and no model is loaded: the train dir does not even exist)."""
    cmd = [sys.executable, "-m", "maskrcnn_body.cli", "predict", "--model", str(tmp_path / "none"), "--webcam", "0"]
    r = subprocess.run(
        [*cmd, "--show"], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "--show needs" in r.stderr
