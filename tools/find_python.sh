#!/usr/bin/env bash
# Prints the Python interpreter `make` should use, or explains on stderr what to do and exits 1.
# Order: the active virtual environment's python, then python3, then python. The interpreter must be
# Python >= 3.10 and able to install packages: a system Python marked externally managed (PEP 668, stock
# Debian/Ubuntu) refuses `pip install`, so outside a virtual environment we say how to make one.
set -euo pipefail
candidates=()
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then candidates+=("$VIRTUAL_ENV/bin/python"); fi
for name in python3 python; do
  if command -v "$name" >/dev/null 2>&1; then candidates+=("$(command -v "$name")"); fi
done
VENV_HINT='python3 -m venv .venv && . .venv/bin/activate && make'
if [ ${#candidates[@]} -eq 0 ]; then
  echo "make: no Python found. Install Python >= 3.10 (Debian/Ubuntu: apt-get install python3 python3-venv), then: $VENV_HINT" >&2
  exit 1
fi
py="${candidates[0]}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "make: $py is Python $("$py" -c 'import platform; print(platform.python_version())'); maskrcnn_body needs >= 3.10 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
managed=$("$py" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
print("yes" if (not in_venv and os.path.exists(marker)) else "no")
PY
)
if [ "$managed" = "yes" ]; then
  echo "make: $py is the system's Python, which refuses pip installs (PEP 668). Use a virtual environment: $VENV_HINT" >&2
  exit 1
fi
echo "$py"
