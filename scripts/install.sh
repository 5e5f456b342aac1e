#!/usr/bin/env bash
# Set up rdls on a fresh machine: Python 3.11 (from Debian's packages where it is missing)
# and a virtual environment in .venv with every package pinned in requirements/lock.txt.
# Safe to rerun: it does nothing when .venv already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
lock=requirements/lock.txt
stamp="$venv/.installed-$(sha256sum "$lock" | cut -c1-16)"

if [ -f "$stamp" ] && "$venv/bin/python" -c "import snakemake" 2>/dev/null; then
    exit 0
fi

python=$(command -v python3.11 || true)
if [ -z "$python" ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "install: Python 3.11 not found; installing it from Debian's packages" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv python3.11-dev gcc g++ >/dev/null
        python=$(command -v python3.11)
    else
        echo "install: rdls needs Python 3.11 (python3.11 on the PATH). Install it, then rerun." >&2
        exit 1
    fi
fi

if ! "$venv/bin/python" -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# torch==2.13.0 in the lock is the CPU build; README.md says how to take the CUDA build.
"$venv/bin/python" -m pip install --quiet -r "$lock"
rm -f "$venv"/.installed-*
touch "$stamp"
echo "install: .venv is ready ($("$venv/bin/python" --version))" >&2
