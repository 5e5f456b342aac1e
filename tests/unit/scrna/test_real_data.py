"""The scRNA steps on real 10x Genomics PBMC data.

Two sources, because neither alone covers both halves:

- scanpy's test matrices in ../shared/data (Cell Ranger 1.2 and 3.0 output, HDF5 and folder,
  of 10x's public PBMC data) exercise the readers on real files. They hold chromosome 21
  only, so no PBMC marker is among their genes: annotating them must stop with the
  "no marker present" error rather than invent labels.
- scanpy's bundled ``pbmc68k_reduced`` (700 cells of 10x's 68k PBMC, Zheng et al., Nat Commun
  2017, with each cell's ``bulk_labels``: its best match among FACS-purified reference
  populations) has the marker genes; its counts are recovered from the stored log-normalised
  values (each cell's smallest non-zero value is one UMI). Annotation with the canonical PBMC
  markers (tests/unit/scrna/pbmc_markers.tsv) must agree with those labels.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rdls.errors import InputError
from rdls.scrna.steps import annotate_step, integrate_step, qc_step

PBMC_MARKERS = Path(__file__).with_name("pbmc_markers.tsv")
TENX = "scrnaseq/scanpy_testdata/10x_data"
# Thresholds for matrices of chromosome 21 genes only (median 29 UMIs per cell), where
# doublet scores would mean nothing.
CHR21_QC = {"min_counts": 10, "min_genes": 5, "doublets": False}


def _qc(sample_id, path, fmt, out: Path, settings) -> Path:
    qc_step(sample_id=sample_id, subject_id=f"donor_{sample_id}", path=path, fmt=fmt,
            settings=settings, seed=0, allow_exclusions=True, out_h5ad=out / f"{sample_id}.h5ad",
            out_metrics=out / f"{sample_id}.tsv", out_png=out / f"{sample_id}.png")  # fmt: skip
    return out / f"{sample_id}.h5ad"


def test_cell_ranger_files_are_read_qcd_integrated_and_refused_without_markers(
    shared_data, tmp_path
):
    tenx = shared_data / TENX
    inputs = {"v3_h5": (tenx / "3.0.0" / "filtered_feature_bc_matrix.h5", "10x_h5"),
              "v3_mtx": (tenx / "3.0.0" / "filtered_feature_bc_matrix", "10x_mtx"),
              "v2_h5": (tenx / "1.2.0" / "filtered_gene_bc_matrices_h5.h5", "10x_h5")}  # fmt: skip
    for path, _ in inputs.values():
        if not path.exists():
            pytest.skip(f"{path} not found (see DESIGN.md: validation data)")
    qc = {sample: _qc(sample, path, fmt, tmp_path, CHR21_QC)
          for sample, (path, fmt) in inputs.items()}  # fmt: skip
    h5, mtx = ad.read_h5ad(qc["v3_h5"]), ad.read_h5ad(qc["v3_mtx"])
    assert h5.shape == mtx.shape and h5.n_vars == 507 and h5.n_obs > 1000
    assert (h5.X != mtx.X).nnz == 0  # the two Cell Ranger 3 formats hold the same counts
    v2 = pd.read_csv(tmp_path / "v2_h5.tsv", sep="\t").iloc[0]
    assert (v2["cells_in"], v2["genes"], v2["status"]) == (12, 343, "excluded")

    pooled = {sample: qc[sample] for sample in ("v3_h5", "v2_h5")}
    integrate_step(samples=pooled, settings={"n_top_genes": 300}, seed=0, threads=2,
                   out_h5ad=tmp_path / "integrated.h5ad",
                   out_umap_png=tmp_path / "umap.png")  # fmt: skip
    integrated = ad.read_h5ad(tmp_path / "integrated.h5ad")
    assert integrated.n_obs == h5.n_obs
    assert {"X_pca_harmony", "X_umap"} & set(integrated.obsm) == {"X_umap"}  # one sample left
    assert list(integrated.uns["integration"]["excluded"]) == ["v2_h5"]
    with pytest.raises(InputError, match="none of its 9 marker genes is in the single-cell"):
        annotate_step(integrated_h5ad=tmp_path / "integrated.h5ad", markers=PBMC_MARKERS,
                      assignments=None, settings={}, out_h5ad=tmp_path / "annotated.h5ad",
                      out_cell_types=tmp_path / "cell_types.tsv",
                      out_dotplot_png=tmp_path / "dotplot.png")  # fmt: skip


def _pbmc68k_counts(path: Path) -> pd.Series:
    """Write pbmc68k_reduced's recovered counts to ``path``; return its FACS-based labels."""
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    logged = pbmc.raw.X.toarray() if sp.issparse(pbmc.raw.X) else np.asarray(pbmc.raw.X)
    scaled = np.expm1(logged.astype(np.float64))
    one_umi = np.where(scaled > 0, scaled, np.inf).min(axis=1, keepdims=True)
    counts = np.round(scaled / one_umi)
    assert np.abs(scaled / one_umi - counts).max() < 0.25  # they are counts, rescaled
    adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)),
                       obs=pd.DataFrame(index=pbmc.obs_names),
                       var=pd.DataFrame(index=pbmc.raw.var_names))  # fmt: skip
    adata.write_h5ad(path)
    return pbmc.obs["bulk_labels"].astype(str)


def test_pbmc_cells_are_annotated_as_b_t_nk_and_monocytes(tmp_path):
    labels = _pbmc68k_counts(tmp_path / "pbmc68k.h5ad")
    # 765 genes (the dataset's variable genes) give about 250 genes per cell.
    qc = _qc("pbmc68k", tmp_path / "pbmc68k.h5ad", "h5ad", tmp_path,
             {"min_counts": 100, "min_genes": 50})  # fmt: skip
    integrate_step(
        samples={"pbmc68k": qc},
        settings={},
        seed=0,
        threads=2,
        out_h5ad=tmp_path / "integrated.h5ad",
        out_umap_png=tmp_path / "umap.png",
    )
    annotate_step(integrated_h5ad=tmp_path / "integrated.h5ad", markers=PBMC_MARKERS,
                  assignments=None, settings={}, out_h5ad=tmp_path / "annotated.h5ad",
                  out_cell_types=tmp_path / "cell_types.tsv",
                  out_dotplot_png=tmp_path / "dotplot.png")  # fmt: skip
    obs = ad.read_h5ad(tmp_path / "annotated.h5ad").obs
    assert len(obs) >= 600  # QC keeps most of these already filtered cells
    facs = labels.reindex(obs["barcode"].astype(str)).to_numpy()
    ours = obs["cell_type"].astype(str).to_numpy()

    def share(group: list[str], cell_type: str) -> float:
        inside = np.isin(facs, group)
        return float(np.mean(ours[inside] == cell_type))

    # Measured (seed 0): B 0.99, monocytes 0.99, CD4 and naive CD8 T 0.97, NK 0.97.
    assert share(["CD19+ B"], "B") >= 0.9
    assert share(["CD14+ Monocyte"], "monocyte") >= 0.9
    assert share(["CD4+/CD25 T Reg", "CD4+/CD45RO+ Memory",
                  "CD8+/CD45RA+ Naive Cytotoxic"], "T") >= 0.9  # fmt: skip
    assert share(["CD56+ NK"], "NK") >= 0.8
    # CD34+ progenitors carry none of these markers: their cluster stays unassigned.
    assert share(["CD34+"], "unassigned") >= 0.5
    assert (obs["subtype"] == "unassigned").all()  # no assignments given
