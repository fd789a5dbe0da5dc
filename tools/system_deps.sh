#!/usr/bin/env bash
# Programs the build and the tests need from the system besides Python packages:
#   tools/system_deps.sh PROGRAM...   (chromium, shellcheck, node, npm)
# chromium: the browser tests drive it with Playwright (Playwright's own browser download is not used);
# shellcheck: the download script's lint test; node, npm: `make web` fetches ONNX Runtime Web from the npm
# registry, and the in-browser page's JavaScript is tested under Node. Finds each one, installs the missing ones
# through apt when it can (root, or sudo without a password), and otherwise says in one line what to run.
# MASKRCNN_BODY_SKIP_BROWSER=1 skips the browser tests instead of installing Chromium.
set -euo pipefail
have_chromium() {
  if [ -n "${CHROMIUM:-}" ] && command -v "$CHROMIUM" >/dev/null 2>&1; then return 0; fi
  for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && return 0; done
  return 1
}
missing=()
for program in "$@"; do
  case "$program" in
    chromium)
      if [ "${MASKRCNN_BODY_SKIP_BROWSER:-0}" != "1" ] && ! have_chromium; then missing+=(chromium chromium-driver); fi ;;
    node) command -v node >/dev/null 2>&1 || missing+=(nodejs) ;;
    *) command -v "$program" >/dev/null 2>&1 || missing+=("$program") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi
if [ "$SUDO" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make: missing ${missing[*]}; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}), or set CHROMIUM=/path/to/chromium, or MASKRCNN_BODY_SKIP_BROWSER=1 to skip the browser tests" >&2
  exit 1
fi
echo "make: installing ${missing[*]} with apt-get (once)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
