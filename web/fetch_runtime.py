#!/usr/bin/env python3
"""Fetches ONNX Runtime Web for the in-browser page (docs/BROWSER.md) from the npm registry.

    python web/fetch_runtime.py                 # what `make web` runs
    python web/fetch_runtime.py --tarball FILE  # a tarball you downloaded (checked the same way)

Reads maskrcnn_body/serving/static/browser/runtime.json (package, pinned version, the registry's sha512
``integrity``, the files the page uses), runs ``npm pack PACKAGE@VERSION``, checks the tarball's sha512
against the pinned value (a mismatch is an error and nothing is written), and extracts only the listed
files, unchanged, into maskrcnn_body/serving/static/browser/runtime/ (ignored by git; package data, so a
wheel built afterwards ships them). Nothing to do when they are there already with the pinned integrity.

Without npm: exit status 1 with what to install; ``--optional`` makes that a warning with status 0
(``make all`` on a machine without Node.js), unless the environment variable CI is ``true``.

Updating the runtime: set ``version`` in runtime.json, put the registry's value in ``integrity``
(``npm view onnxruntime-web@VERSION dist.integrity``), run this script, run tests/test_browser_web.py.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSER = os.path.join(ROOT, "maskrcnn_body", "serving", "static", "browser")


def integrity(path: str) -> str:
    """The npm ``dist.integrity`` form of a file: ``sha512-`` + base64 of its SHA-512."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def up_to_date(spec: dict, out: str) -> bool:
    stamp = os.path.join(out, "runtime.json")
    if not os.path.isfile(stamp):
        return False
    with open(stamp) as f:
        have = json.load(f)
    names = [os.path.basename(p) for p in spec["files"]]
    if have.get("integrity") != spec["integrity"] or not all(os.path.isfile(os.path.join(out, n)) for n in names):
        return False
    for n in names:  # unchanged since the fetch
        with open(os.path.join(out, n), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != have.get("sha256", {}).get(n):
                return False
    return True


def npm_pack(spec: dict, tmp: str) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm")
    ref = f"{spec['package']}@{spec['version']}"
    proc = subprocess.run(
        [npm, "pack", ref, "--pack-destination", tmp, "--silent"], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack {ref} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    names = [n for n in os.listdir(tmp) if n.endswith(".tgz")]
    if len(names) != 1:
        raise RuntimeError(f"npm pack {ref} wrote {names}, expected one .tgz")
    return os.path.join(tmp, names[0])


def extract(spec: dict, tarball: str, out: str) -> None:
    got = integrity(tarball)
    if got != spec["integrity"]:
        raise RuntimeError(
            f"{tarball}: integrity {got} is not the pinned {spec['integrity']} "
            f"({spec['package']}@{spec['version']}); nothing written"
        )
    staging = out + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with tarfile.open(tarball, "r:gz") as tar:
        for rel in spec["files"]:
            member = tar.getmember(f"package/{rel}")
            src = tar.extractfile(member)
            if src is None:
                raise RuntimeError(f"{tarball}: package/{rel} is not a file")
            with open(os.path.join(staging, os.path.basename(rel)), "wb") as f:
                shutil.copyfileobj(src, f)
    sha256 = {}
    for rel in spec["files"]:
        with open(os.path.join(staging, os.path.basename(rel)), "rb") as f:
            sha256[os.path.basename(rel)] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(staging, "runtime.json"), "w") as f:  # the stamp: export --web checks the files
        json.dump({**spec, "tarball_integrity_checked": got, "sha256": sha256}, f, indent=1)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tarball", help="use this npm tarball instead of running npm pack (checked the same way)")
    p.add_argument("--optional", action="store_true", help="no npm: warn and exit 0 (unless CI=true)")
    p.add_argument("--out", default=os.path.join(BROWSER, "runtime"), help="destination (default: %(default)s)")
    args = p.parse_args(argv)
    with open(os.path.join(BROWSER, "runtime.json")) as f:
        spec = json.load(f)
    ref = f"{spec['package']}@{spec['version']}"
    if not args.tarball and up_to_date(spec, args.out):
        print(f"{ref}: up to date in {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tarball = args.tarball or npm_pack(spec, tmp)
        except FileNotFoundError:
            msg = f"{ref} not fetched: npm is not installed (Node.js 18+; Debian: apt-get install npm)"
            if args.optional and os.environ.get("CI", "").lower() != "true":
                print(f"warning: {msg}; the in-browser page (export --web) and its tests need it", file=sys.stderr)
                return 0
            print(f"error: {msg}", file=sys.stderr)
            return 1
        try:
            extract(spec, tarball, args.out)
        except (RuntimeError, KeyError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"{ref}: integrity checked, {len(spec['files'])} files ({size / 1e6:.1f} MB) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
