#!/usr/bin/env bash
# Set everything up and run the workflow on the demo cohort:
#   bash scripts/demo.sh [snakemake options, default --cores all]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ $# -gt 0 ] || set -- --cores all
exec .venv/bin/snakemake "$@"
