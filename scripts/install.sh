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

install_python() {
    # Debian splits venv support (ensurepip) off into python3.11-venv.
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "install: installing Python 3.11 with venv support from Debian's packages" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            python3.11 python3.11-venv python3.11-dev gcc g++ >/dev/null
    else
        echo "install: rdls needs Python 3.11 with venv (Debian: python3.11-venv). Install it, then rerun." >&2
        exit 1
    fi
}

if ! "$venv/bin/python" -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then
    rm -rf "$venv"
    command -v python3.11 >/dev/null || install_python
    if ! python3.11 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        install_python
        python3.11 -m venv "$venv"
    fi
fi
# pyradiomics-bhklab compiles a C extension: it needs a compiler and Python's headers.
headers=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if ! command -v gcc >/dev/null || [ ! -f "$headers/Python.h" ]; then
    install_python
fi

# Some pip set-ups warn once per package about index folders they lack; that is noise here.
quiet_pip() {
    "$venv/bin/python" -m pip install --quiet "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
}
quiet_pip --upgrade pip
# torch==2.13.0 in the lock is the CPU build; README.md says how to take the CUDA build.
quiet_pip -r "$lock"
rm -f "$venv"/.installed-*
touch "$stamp"
echo "install: .venv is ready ($("$venv/bin/python" --version))" >&2
