#!/usr/bin/env bash
# Install Debian's headless-capable Chromium, which the browser test of the subtype-biology
# report drives (tests/integration/test_report_browser.py). Safe to rerun: does nothing when
# `chromium` is already on PATH. Needs root and apt-get (Debian 12); exits 3 without them so
# that callers can tell "cannot install here" from a failed installation.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: apt-get not found; install Chromium with your system's package manager." >&2
    exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_chromium.sh: needs root to run apt-get; run it as root or install the 'chromium' package." >&2
    exit 3
fi

start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# fonts-dejavu-core: the report's text renders with real glyphs in screenshots.
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed $(chromium --version) in $(($(date +%s) - start)) s"
