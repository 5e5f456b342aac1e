"""Two clean runs agree, inputs stay untouched, and no patient identifier leaves the inputs.

`second_run` (conftest) is the tiny demo's cohort run again from scratch in a working
directory of its own, with the files the local tiny run's demo made as read-only inputs
(through SLURM in CI, locally elsewhere). Same config, same seed: every table must be the
same, value for value. GPU runs agree with CPU runs within the tolerance that
tests/unit/imaging/test_encoder.py states (docs/benchmarks.md, "GPU").
"""

import gzip
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from rdls.demo._generate import _fake_identity
from tests.integration.conftest import read_result, snapshot

pytestmark = pytest.mark.integration

TABLE_SUFFIXES = (".tsv", ".parquet")


def _tables(workdir: Path) -> list[str]:
    """The result tables of a run: the demo's inputs left out, and `snakemake predict`'s,
    which other tests add to the first run."""
    results = workdir / "results"
    return sorted(
        str(path.relative_to(workdir))
        for path in results.rglob("*")
        if path.suffix in TABLE_SUFFIXES
        and not any(path.is_relative_to(results / folder) for folder in ("demo", "predict"))
    )


def test_two_clean_runs_write_the_same_tables(tiny_run, second_run):
    tables = _tables(tiny_run)
    assert len(tables) > 100
    assert _tables(second_run.workdir) == tables
    for table in tables:
        second, first = read_result(second_run.workdir / table), read_result(tiny_run / table)
        pd.testing.assert_frame_equal(second, first, check_exact=True, obj=table)


def test_the_read_only_inputs_are_left_as_they_were(second_run):
    after = snapshot(second_run.inputs)
    assert set(after) - set(second_run.inputs_before) == set(), "written beside the inputs"
    assert after == second_run.inputs_before
    assert all(mode & 0o222 == 0 for *_, mode in after.values())


def _texts(path: Path):
    """The bytes of a file as a reader would see its text: unpacked where compressed."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        yield gzip.decompress(data)
    elif path.suffix == ".parquet":
        yield pd.read_parquet(path).to_csv().encode()
    elif path.suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                yield archive.read(name)
    yield data


def test_no_dicom_identifier_reaches_an_output_log_or_report(second_run):
    """The demo's DICOM subjects carry made-up names, IDs and birth dates in every header;
    none may appear in any result, log, benchmark, SLURM log or the run's console."""
    mri = pd.read_csv(second_run.inputs / "sheets/mri.tsv", sep="\t")
    dicom = [i for i, image in enumerate(mri["image"]) if not image.endswith(".nii.gz")]
    assert dicom
    identities = [_fake_identity(42, index) for index in dicom]
    secrets = [value.encode() for identity in identities for value in identity.values()]
    # The inputs do carry them (the check below has something to find).
    first_slice = min((second_run.workdir / mri["image"][dicom[0]]).glob("*.dcm"))
    assert any(secret in first_slice.read_bytes() for secret in secrets)
    workdir = second_run.workdir
    files = [
        path
        for folder in ("results", "logs", "benchmarks", ".snakemake/slurm_logs", ".snakemake/log")
        for path in (workdir / folder).rglob("*")
        if path.is_file() and not path.is_relative_to(second_run.inputs)
    ]
    assert len(files) > 300
    assert any(path.name == "subtype_biology.html" for path in files)
    for path in files:
        for text in _texts(path):
            for secret in secrets:
                assert secret not in text, f"{secret!r} found in {path}"
    for secret in secrets:
        assert secret.decode() not in second_run.output
