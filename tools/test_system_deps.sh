#!/usr/bin/env bash
# What `make test` needs from the system besides Python packages: Chromium (the browser tests drive it
# with Playwright; Playwright's own browser download is not used) and shellcheck (the download script's
# lint test). Finds them, installs them through apt when it can (root, or sudo without a password), and
# otherwise says in one line what to run. MASKRCNN_BODY_SKIP_BROWSER=1 skips the browser tests instead.
set -euo pipefail
have_chromium() {
  if [ -n "${CHROMIUM:-}" ] && command -v "$CHROMIUM" >/dev/null 2>&1; then return 0; fi
  for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && return 0; done
  return 1
}
missing=()
if [ "${MASKRCNN_BODY_SKIP_BROWSER:-0}" != "1" ] && ! have_chromium; then missing+=(chromium chromium-driver); fi
if ! command -v shellcheck >/dev/null 2>&1; then missing+=(shellcheck); fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi
if [ "$SUDO" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make test: missing ${missing[*]}; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}), or set CHROMIUM=/path/to/chromium, or MASKRCNN_BODY_SKIP_BROWSER=1 to skip the browser tests" >&2
  exit 1
fi
echo "make test: installing ${missing[*]} with apt-get (once)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
