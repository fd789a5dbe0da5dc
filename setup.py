"""Wheel tagging only; the package metadata is PEP 621 in pyproject.toml.

The compiled ops (``maskrcnn_body/ops/_maskrcnn_body_ops*.so``, built by ``make``) are optional. A wheel
built from a tree that has them holds native x86-64/aarch64 Linux code, so it must not claim
``py3-none-any``: it is tagged for this platform (``py3-none-linux_x86_64`` here; any Python 3, as the
ops talk to TensorFlow's C++ ABI rather than Python's). A tree without them gives a pure
``py3-none-any`` wheel, which runs the pure-TF ops everywhere.
"""

import glob
import os

from setuptools import setup
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def compiled_ops() -> list:
    """The compiled-op libraries in the source tree (empty when `make` has not built them)."""
    return sorted(glob.glob(os.path.join(HERE, "maskrcnn_body", "ops", "*.so")))


class OpsDistribution(Distribution):
    """A distribution that is platform-specific exactly when it ships compiled ops."""

    def has_ext_modules(self) -> bool:
        return bool(compiled_ops())


def bdist_wheel_class():
    try:
        from setuptools.command.bdist_wheel import bdist_wheel
    except ImportError:  # setuptools < 70.1
        from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def get_tag(self):
            python, abi, plat = super().get_tag()
            if compiled_ops():
                python, abi = "py3", "none"  # no Python C-API in the ops; TensorFlow's ABI is pinned by [cpu]/[gpu]
            return python, abi, plat

    return PlatformWheel


setup(distclass=OpsDistribution, cmdclass={"bdist_wheel": bdist_wheel_class()})
