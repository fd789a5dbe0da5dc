import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
# Real dataset fixtures: byte-identical copies of files in public repositories (their SOURCES.md lists each file's
# repository, path and commit). They are not part of this repository; docs/TESTING.md says how to get them.
FIXTURES = pathlib.Path(os.environ.get("MASKRCNN_BODY_FIXTURES") or ROOT.parent / "shared" / "fixtures")
FIXTURES_HELP = (
    f"real dataset fixtures not found at {FIXTURES}: get them as docs/TESTING.md#fixtures says (each file is a copy "
    "of a file in a public repository) and put them there or set MASKRCNN_BODY_FIXTURES=DIR"
)


@pytest.fixture(scope="session")
def fixtures_dir():
    if not FIXTURES.exists():
        if os.environ.get("CI"):  # CI has them: a missing folder there is a broken set-up, not a reason to skip
            pytest.fail(FIXTURES_HELP + " (CI is set, so this fails instead of skipping)")
        pytest.skip(FIXTURES_HELP)
    return FIXTURES
