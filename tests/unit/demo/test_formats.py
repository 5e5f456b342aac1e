"""The demo's 10x files have the layout of real Cell Ranger output (shared/data reference)."""

import h5py
import numpy as np
import pytest

from rdls.demo._genes import gene_universe
from rdls.demo._scrna import write_scrna_sample

REAL_10X = "scrnaseq/scanpy_testdata/10x_data/3.0.0"


def layout(path) -> dict[str, str]:
    """Every group and dataset of an HDF5 file, with the dataset's dtype kind."""
    found = {}
    with h5py.File(path) as handle:
        handle.visititems(
            lambda name, item: found.__setitem__(
                name, item.dtype.kind if isinstance(item, h5py.Dataset) else "group"
            )
        )
    return found


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tenx")
    for fmt, name in (("10x_h5", "sample.h5"), ("10x_mtx", "sample_mtx")):
        write_scrna_sample(
            out_path=folder / name,
            fmt=fmt,
            sample_id="SC01",
            subtype="RDLS2",
            n_cells=200,
            genes=gene_universe(500),
            rng=np.random.default_rng(0),
        )
    return folder


def test_hdf5_layout_matches_cell_ranger_v3(shared_data, written):
    assert layout(written / "sample.h5") == layout(
        shared_data / REAL_10X / "filtered_feature_bc_matrix.h5"
    )


def test_mtx_folder_holds_the_files_cell_ranger_v3_writes(shared_data, written):
    real = sorted(p.name for p in (shared_data / REAL_10X / "filtered_feature_bc_matrix").iterdir())
    assert sorted(p.name for p in (written / "sample_mtx").iterdir()) == real
