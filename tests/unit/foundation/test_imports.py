"""Snakemake imports rdls while it parses the workflow: that must stay light and fast."""

import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("torch", "SimpleITK", "scanpy", "openslide", "tifffile", "h5py", "lifelines",
         "matplotlib", "pydicom", "scipy")  # fmt: skip


def test_parse_time_modules_import_no_heavy_library():
    code = (
        "import sys, rdls, rdls.config, rdls.sheets, rdls.demo\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == ""
