"""The one source of the package version (``setup.py`` reads it from here)."""

__version__ = "0.2.0"
