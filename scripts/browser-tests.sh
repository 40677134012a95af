#!/usr/bin/env bash
# Browser tests: LTI launches inside an LMS page's iframe, in headless Chromium, with third-party cookies
# blocked, partitioned, or allowed (Tests/Browser). Builds the gateway, runs the tests, prints where the
# screenshots are. Installs Chromium (Debian's package) and the Python packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Swift toolchain lives in /opt/swift on these machines; make sure it is on PATH.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=no
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = no ]; then
    as_root apt-get update -q
    apt_updated=yes
  fi
  as_root apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing chromium (Debian package)…"
  apt_install chromium
fi

if ! python3 -c 'import playwright, pytest, cryptography' >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  echo "Installing playwright, pytest and cryptography (PyPI)…"
  # Debian's own Python refuses pip installs into the system (PEP 668) unless told otherwise.
  python3 -m pip install -q playwright pytest cryptography \
    || python3 -m pip install -q --break-system-packages playwright pytest cryptography
fi

swift build --product lti-gateway

export PYTHONDONTWRITEBYTECODE=1
export BROWSER_TEST_OUTPUT="${BROWSER_TEST_OUTPUT:-$PWD/browser-test-output}"
status=0
# Each test has its own limit (BROWSER_TEST_LIMIT, 120 s); the whole run at most 10 minutes.
timeout --kill-after=30 600 python3 -m pytest -v --durations=0 Tests/Browser || status=$?
echo "Screenshots and logs: $BROWSER_TEST_OUTPUT"
exit "$status"
