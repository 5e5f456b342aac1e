"""Reading one sample's count matrix in a 10x Genomics format or as an AnnData file.

Every problem a user can fix (a wrong path, a format that does not match the file, a corrupt
or empty file, a matrix without gene symbols or without raw counts) is an
:class:`rdls.errors.InputError` that names the sample, the file and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from rdls.errors import InputError

FORMATS = ("10x_h5", "10x_mtx", "h5ad")
# var columns of an h5ad file that hold gene symbols when its var_names are gene IDs.
SYMBOL_COLUMNS = ("gene_symbols", "gene_symbol", "feature_name", "gene_name", "symbol")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_MTX_FILES = {
    "Cell Ranger v3": ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"),
    "Cell Ranger v2": ("barcodes.tsv", "genes.tsv", "matrix.mtx"),
}


def read_counts(path: str | Path, *, fmt: str, sample_id: str):
    """One sample's raw UMI counts as an AnnData (cells x genes, CSR float32).

    Parameters
    ----------
    path : str or Path
        ``filtered_feature_bc_matrix.h5`` (``10x_h5``, Cell Ranger v2 or v3), the
        ``filtered_feature_bc_matrix`` folder (``10x_mtx``) or an ``.h5ad`` file whose ``X``
        or ``layers["counts"]`` holds raw counts (``h5ad``).
    fmt : str
        One of ``FORMATS``: the scrna sheet's ``format`` column.
    sample_id : str
        For the messages.

    Returns
    -------
    anndata.AnnData
        Gene symbols (made unique) as ``var_names``, barcodes as ``obs_names``, Gene
        Expression features only.
    """
    path = Path(path)
    where = f"scrna sheet, sample {sample_id}, column 'path': {path}"
    if fmt not in FORMATS:
        raise InputError(
            f"scrna sheet, sample {sample_id}, column 'format': {fmt!r} is not a known format; "
            f"use one of {', '.join(FORMATS)}."
        )
    if not path.exists():
        raise InputError(f"{where} does not exist. Fix the path, or remove the row.")
    readers = {"10x_h5": _read_10x_h5, "10x_mtx": _read_10x_mtx, "h5ad": _read_h5ad}
    adata = readers[fmt](path, where)
    adata = _with_symbols(adata, where)
    adata.X = _raw_counts(adata, where)
    if adata.n_obs == 0 or adata.n_vars == 0 or adata.X.sum() == 0:
        raise InputError(
            f"{where}: the count matrix is empty ({adata.n_obs} cells x {adata.n_vars} genes, "
            f"{int(adata.X.sum())} UMIs). Point the sheet at Cell Ranger's filtered matrix of "
            "this sample, or remove the row."
        )
    adata.obs_names = adata.obs_names.astype(str)
    duplicated = adata.obs_names[adata.obs_names.duplicated()].unique()
    if len(duplicated):
        # Cells are named <sample>:<barcode> once samples are pooled: a barcode twice would
        # merge two cells' labels.
        raise InputError(
            f"{where}: {len(duplicated)} barcode(s) appear more than once (first: "
            f"{duplicated[0]!r}). Export one row per cell (Cell Ranger's filtered matrix), "
            "or remove the row."
        )
    adata.var_names_make_unique()
    return adata


def _read_10x_h5(path: Path, where: str):
    import h5py
    import scanpy as sc

    if path.is_dir():
        raise InputError(
            f"{where} is a folder but the format is '10x_h5'; set the format to '10x_mtx' "
            "for a matrix.mtx folder, or point the path at filtered_feature_bc_matrix.h5."
        )
    if not h5py.is_hdf5(path):
        raise InputError(
            f"{where} is not an HDF5 file (format '10x_h5'). Point the path at Cell Ranger's "
            "filtered_feature_bc_matrix.h5, or fix the format column."
        )
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
    except OSError as error:
        raise InputError(f"{where} cannot be opened: it is corrupt or truncated ({error}). "
                         "Copy the file again from Cell Ranger's output.") from None  # fmt: skip
    if {"X", "obs", "var"} <= keys:
        raise InputError(f"{where} is an AnnData (.h5ad) file, not a 10x HDF5 matrix; "
                         "set the format column to 'h5ad'.")  # fmt: skip
    if "matrix" not in keys and len(keys) != 1:
        raise InputError(
            f"{where} is HDF5 but not a Cell Ranger matrix (groups {sorted(keys)[:5]}); point "
            "the path at filtered_feature_bc_matrix.h5, or fix the format column."
        )
    try:
        return sc.read_10x_h5(path)
    except Exception as error:  # h5py and scanpy raise many kinds for damaged files
        raise InputError(f"{where} cannot be read as a 10x HDF5 matrix ({error}). Copy the "
                         "file again from Cell Ranger's output.") from None  # fmt: skip


def _read_10x_mtx(path: Path, where: str):
    import scanpy as sc

    if not path.is_dir():
        hint = " It looks like HDF5: set the format to '10x_h5'." if _is_hdf5(path) else ""
        raise InputError(
            f"{where} is a file but the format is '10x_mtx', which needs Cell Ranger's "
            f"filtered_feature_bc_matrix folder.{hint}"
        )
    layout = next((files for files in _MTX_FILES.values()
                   if all((path / name).is_file() for name in files)), None)  # fmt: skip
    if layout is None:
        expected = "; or ".join(f"{', '.join(files)} ({version})"
                                for version, files in _MTX_FILES.items())  # fmt: skip
        present = sorted(p.name for p in path.iterdir())[:6]
        raise InputError(f"{where}: the folder lacks the matrix files; expected {expected}, "
                         f"found {present or 'nothing'}.")  # fmt: skip
    try:
        return sc.read_10x_mtx(path)
    except Exception as error:
        raise InputError(f"{where} cannot be read as a 10x matrix folder ({error}). Copy the "
                         "folder again from Cell Ranger's output.") from None  # fmt: skip


def _read_h5ad(path: Path, where: str):
    import anndata as ad

    if path.is_dir() or not _is_hdf5(path):
        raise InputError(
            f"{where} is not an .h5ad (HDF5) file; fix the format column ('10x_h5' or "
            "'10x_mtx' for Cell Ranger output) or the path."
        )
    try:
        adata = ad.read_h5ad(path)
    except Exception as error:
        raise InputError(f"{where} cannot be read as an AnnData file ({error}); if it is "
                         "Cell Ranger output set the format to '10x_h5'.") from None  # fmt: skip
    if "counts" in adata.layers:
        adata.X = adata.layers["counts"]
    adata.layers.clear()
    adata.raw = None
    return adata


def _with_symbols(adata, where: str):
    names = pd.Index(adata.var_names.astype(str))
    if _look_like_ids(names):
        column = next((c for c in SYMBOL_COLUMNS if c in adata.var.columns), None)
        if column is None or _look_like_ids(pd.Index(adata.var[column].astype(str))):
            raise InputError(
                f"{where}: the genes have no symbols (names like {names[0]!r}); the "
                "mitochondrial QC and the marker genes need symbols such as 'MT-CO1' and "
                f"'CD3E'. Write them as var_names or a var column {SYMBOL_COLUMNS[0]!r}."
            )
        adata.var["gene_ids"] = names
        adata.var_names = pd.Index(adata.var[column].astype(str))
    return adata


def _look_like_ids(names: pd.Index) -> bool:
    """Ensembl IDs or plain numbers for (nearly) every gene."""
    ids = names.str.match(_ENSEMBL.pattern) | names.str.fullmatch(r"\d+")
    return bool(len(names)) and float(np.mean(ids)) > 0.9


def _raw_counts(adata, where: str) -> sp.csr_matrix:
    matrix = sp.csr_matrix(adata.X, dtype=np.float32)
    values = matrix.data
    fractional = values[np.abs(values - np.round(values)) > 1e-3]
    if fractional.size or (values.size and values.min() < 0):
        example = fractional[0] if fractional.size else values.min()
        raise InputError(
            f"{where}: the matrix holds normalised values (e.g. {example:.4g}), not raw UMI "
            "counts; store the counts in X or in layers['counts']."
        )
    matrix.data = np.round(values)
    matrix.eliminate_zeros()
    return matrix


def _is_hdf5(path: Path) -> bool:
    import h5py

    return path.is_file() and h5py.is_hdf5(path)
