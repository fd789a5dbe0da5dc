"""The set-up a newcomer runs: the Makefile finds an interpreter it may install into, and `make test` finds or
installs what it needs from the system, or says in one line what to run (tools/*.sh, called by the Makefile)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIND_PYTHON = ROOT / "tools" / "find_python.sh"
SYSTEM_DEPS = ROOT / "tools" / "system_deps.sh"


def _fake(bin_dir: pathlib.Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + script + "\n")
    path.chmod(0o755)


def _run(script, bin_dir, *args, **env):
    """``script`` with only ``bin_dir`` and the shell's basic tools on PATH (no Python, no Chromium)."""
    basic = bin_dir / "basic"
    basic.mkdir(exist_ok=True)
    for tool in ("bash", "env", "cat", "id", "sudo", "dirname"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if real and not (bin_dir / tool).exists() and not (basic / tool).exists():
            (basic / tool).symlink_to(real)
    path = f"{bin_dir}:{basic}"
    full_env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_find_python_prefers_the_active_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    _fake(tmp_path, "python3", "exit 3")  # must not be asked
    r = _run(FIND_PYTHON, tmp_path, VIRTUAL_ENV=str(venv))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(venv / "bin" / "python")


def test_find_python_without_any_python_says_what_to_do(tmp_path):
    r = _run(FIND_PYTHON, tmp_path)
    assert r.returncode == 1
    assert "no Python found" in r.stderr and "python3 -m venv .venv" in r.stderr


def test_find_python_refuses_an_externally_managed_system_python(tmp_path):
    # a python3 that reports itself as a PEP 668 system interpreter (what stock Debian/Ubuntu have)
    _fake(tmp_path, "python3", f'if [ "$1" = "-" ]; then cat >/dev/null; echo yes; else exec {sys.executable} "$@"; fi')
    r = _run(FIND_PYTHON, tmp_path)
    assert r.returncode == 1
    assert "PEP 668" in r.stderr and "python3 -m venv .venv && . .venv/bin/activate && make" in r.stderr


def test_find_python_takes_python3_when_it_may_install(tmp_path):
    _fake(tmp_path, "python3", f'exec {sys.executable} "$@"')
    r = _run(FIND_PYTHON, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "python3")


def test_system_deps_found_on_path_installs_nothing(tmp_path):
    _fake(tmp_path, "chromium", "exit 0")
    _fake(tmp_path, "shellcheck", "exit 0")
    _fake(tmp_path, "node", "exit 0")
    _fake(tmp_path, "npm", "exit 0")
    _fake(tmp_path, "apt-get", f"touch {tmp_path}/apt-called")
    r = _run(SYSTEM_DEPS, tmp_path, "chromium", "shellcheck", "node", "npm")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "apt-called").exists()


def test_system_deps_installed_with_apt_as_root(tmp_path):
    _fake(tmp_path, "id", "echo 0")
    _fake(tmp_path, "apt-get", f'echo "$@" >> {tmp_path}/apt-log')
    r = _run(SYSTEM_DEPS, tmp_path, "chromium", "shellcheck", "node", "npm")
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "apt-log").read_text().splitlines()
    assert log[0] == "update -qq"
    assert log[1].endswith("install -y -qq --no-install-recommends chromium chromium-driver shellcheck nodejs npm")


def test_system_deps_without_root_or_sudo_give_one_line_instruction(tmp_path):
    _fake(tmp_path, "id", "echo 1000")
    _fake(tmp_path, "sudo", "exit 1")  # sudo that needs a password
    _fake(tmp_path, "apt-get", f"touch {tmp_path}/apt-called")
    r = _run(SYSTEM_DEPS, tmp_path, "chromium", "shellcheck", "node", "npm")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "sudo apt-get install chromium chromium-driver shellcheck nodejs npm" in lines[0]
    assert "MASKRCNN_BODY_SKIP_BROWSER=1" in lines[0]
    assert not (tmp_path / "apt-called").exists()


def _pytest_fixture_test(**env):
    """Runs one test that reads the real dataset fixtures, with the fixtures folder pointed somewhere empty."""
    full = {k: v for k, v in os.environ.items() if k != "CI"}
    full.update(MASKRCNN_BODY_FIXTURES="/nonexistent/fixtures", **env)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        "tests/test_convert_ade20k.py::test_atr_parsing",
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=full, timeout=300)


def test_missing_fixtures_skip_with_how_to_get_them():
    r = _pytest_fixture_test()
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout[-2000:]
    assert "docs/TESTING.md#fixtures" in r.stdout and "MASKRCNN_BODY_FIXTURES" in r.stdout


def test_missing_fixtures_fail_in_ci():
    r = _pytest_fixture_test(CI="true")
    assert r.returncode == 1 and "1 error" in r.stdout, r.stdout[-2000:]
    assert "CI is set, so this fails instead of skipping" in r.stdout
