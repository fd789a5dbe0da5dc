"""Test-only helpers (stand-in models, fixtures, kernel emulations); not part of the package."""
