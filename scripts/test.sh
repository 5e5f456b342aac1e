#!/usr/bin/env bash
# Set everything up and run the checks CI runs: linters, then the whole test suite.
#   bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== snakefmt" >&2
snakefmt --check Snakefile workflow/rules
echo "== snakemake --lint" >&2
snakemake --lint --cores 1 >/dev/null
echo "== pytest" >&2
# pytest exits 5 when it collected no test: that is a failure here too.
# The slowest tests are listed at the end, to see where CI time goes.
python -m pytest --durations=25 "$@"
