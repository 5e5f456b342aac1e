"""The per-shard steps: exclusions with reasons, or a stop, and the assembled tables."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import item_rng
from rdls.errors import QCFailure
from rdls.imaging.features import assemble_features
from rdls.imaging.steps import (
    embed_shard,
    ingest_shard,
    load_crops,
    preprocess_shard,
    radiomics_shard,
    train_encoder_step,
)

PREPROCESS = {"crop_voxels": [40, 40, 12], "n4": False}
ENCODER = {"widths": [4, 8, 8, 8], "context_voxels": [4, 4, 1], "epochs": 1, "batch_size": 4}
PARAMS = """\
setting:
  binWidth: 25
  label: 1
imageType:
  Original: {}
featureClass:
  shape:
  firstorder:
"""


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    """Five demo subjects, and one whose mask is empty (it must be excluded at ingest)."""
    folder = tmp_path_factory.mktemp("mri")
    rows = []
    for i, subtype in enumerate(["RDLS1", "RDLS2", "RDLS3", "RDLS1", "RDLS2"]):
        image, mask = folder / f"S{i}.nii.gz", folder / f"S{i}_mask.nii.gz"
        write_subject_mri(subtype=subtype, centre="AB"[i % 2], image_path=image, mask_path=mask,
                          shape=(64, 64, 16), rng=item_rng(1, "mri", i))  # fmt: skip
        rows.append({"subject_id": f"S{i}", "image": str(image), "mask": str(mask),
                     "mask_label": 1})  # fmt: skip
    empty = sitk.ReadImage(rows[0]["mask"]) * 0
    sitk.WriteImage(empty, str(folder / "empty_mask.nii.gz"))
    rows.append({"subject_id": "BAD", "image": rows[0]["image"],
                 "mask": str(folder / "empty_mask.nii.gz"), "mask_label": 1})  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def shard(subjects, tmp_path_factory):
    out = tmp_path_factory.mktemp("shard")
    ingest_shard(subjects=subjects, out_dir=out / "ingested", out_table=out / "ingested.tsv",
                 settings={}, allow_exclusions=True)  # fmt: skip
    preprocess_shard(ingested_table=out / "ingested.tsv", ingested_dir=out / "ingested",
                     out_crops=out / "crops.npz", out_table=out / "crops.tsv",
                     settings=PREPROCESS, allow_exclusions=True)  # fmt: skip
    (out / "params.yaml").write_text(PARAMS)
    radiomics_shard(ingested_table=out / "ingested.tsv", ingested_dir=out / "ingested",
                    params_file=out / "params.yaml", out_features=out / "radiomics.parquet",
                    out_table=out / "radiomics.tsv", allow_exclusions=True)  # fmt: skip
    train_encoder_step(crops=[out / "crops.npz"], out_checkpoint=out / "encoder.pt",
                       out_curve=out / "curve.tsv", out_figure=out / "curve.png",
                       out_figure_vector=out / "curve.svg", settings=ENCODER, seed=3)  # fmt: skip
    embed_shard(crops=out / "crops.npz", checkpoint=out / "encoder.pt",
                out_features=out / "deep.parquet", settings=ENCODER)  # fmt: skip
    return out


def test_a_failing_subject_is_excluded_with_its_reason_and_the_rest_go_on(shard):
    status = pd.read_csv(shard / "ingested.tsv", sep="\t", keep_default_na=False)
    assert status.set_index("subject_id")["status"].to_dict() == {
        "S0": "ok", "S1": "ok", "S2": "ok", "S3": "ok", "S4": "ok", "BAD": "excluded"
    }  # fmt: skip
    reason = status.set_index("subject_id").loc["BAD", "reason"]
    assert "empty_mask.nii.gz" in reason and "no voxel with the tumour label 1" in reason
    assert sorted(p.name for p in (shard / "ingested").iterdir()) == sorted(
        f"S{i}_{kind}.nii.gz" for i in range(5) for kind in ("image", "mask")
    )
    crops, ids = load_crops(shard / "crops.npz")
    assert ids == ["S0", "S1", "S2", "S3", "S4"] and crops.shape == (5, 2, 40, 40, 12)
    assert pd.read_parquet(shard / "radiomics.parquet")["subject_id"].tolist() == ids
    # subject_id, then mean and SD over three regions at the stem and stages 1-3, the view's.
    deep = pd.read_parquet(shard / "deep.parquet")
    assert deep.shape == (5, 1 + 3 * 2 * (4 + 4 + 8 + 8) + 8)
    assert deep.columns[1] == "deep_l0_tumour_mean_000"
    assert deep.columns[-1] == "deep_l4_view_mean_007"


def test_without_exclusions_a_failing_subject_stops_the_job(subjects, tmp_path):
    with pytest.raises(QCFailure, match=r"no voxel with the tumour label 1.*allow_exclusions"):
        ingest_shard(subjects=subjects, out_dir=tmp_path / "i", out_table=tmp_path / "i.tsv",
                     settings={}, allow_exclusions=False)  # fmt: skip


def test_ingested_files_carry_the_image_grid(shard, subjects):
    image = sitk.ReadImage(str(shard / "ingested/S1_image.nii.gz"))
    mask = sitk.ReadImage(str(shard / "ingested/S1_mask.nii.gz"))
    assert image.GetSize() == mask.GetSize() == (64, 64, 16)
    np.testing.assert_allclose(image.GetOrigin(), mask.GetOrigin())
    source = sitk.GetArrayFromImage(sitk.ReadImage(subjects[1]["image"]))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), source)  # LPS already


def test_assembled_tables_list_exclusions_and_join_the_families(shard, tmp_path):
    sheet = tmp_path / "subjects.tsv"
    subjects = pd.DataFrame({"subject_id": ["S0", "S1", "S2", "S3", "S4", "BAD"],
                             "cohort": ["training"] * 4 + ["external_validation"] * 2,
                             "centre": ["A", "B", "A", "B", "A", "A"]})  # fmt: skip
    subjects.to_csv(sheet, sep="\t", index=False)
    out = {f: tmp_path / f"{f}.parquet" for f in ("radiomics", "deep")}
    raw = {f: tmp_path / f"{f}_raw.parquet" for f in ("radiomics", "deep")}
    assemble_features(
        subjects_sheet=sheet,
        status_tables=[shard / "ingested.tsv", shard / "crops.tsv", shard / "radiomics.tsv"],
        radiomics=[shard / "radiomics.parquet"],
        deep=[shard / "deep.parquet"],
        icc_tables=None,
        harmonisation={"method": "none", "reference_centre": None},
        seed=1,
        out_features=out,
        out_unharmonised=raw,
        out_models={f: tmp_path / f"{f}.json" for f in ("radiomics", "deep")},
        out_exclusions=tmp_path / "exclusions.tsv",
        out_harmonisation=tmp_path / "harmonisation.tsv",
    )
    exclusions = pd.read_csv(tmp_path / "exclusions.tsv", sep="\t")
    assert exclusions[["item_id", "kind", "step"]].values.tolist() == [["BAD", "mri", "ingest"]]
    for family in out:
        table = pd.read_parquet(out[family])
        assert table["subject_id"].tolist() == ["S0", "S1", "S2", "S3", "S4"]
        assert table.columns[:3].tolist() == ["subject_id", "cohort", "centre"]
        pd.testing.assert_frame_equal(table, pd.read_parquet(raw[family]))  # method none


def test_a_pretrained_checkpoint_is_adopted_instead_of_training(shard, tmp_path):
    train_encoder_step(crops=[], pretrained=str(shard / "encoder.pt"),
                       out_checkpoint=tmp_path / "e.pt", out_curve=tmp_path / "c.tsv",
                       out_figure=tmp_path / "c.png", out_figure_vector=tmp_path / "c.svg",
                       settings=ENCODER, seed=3)  # fmt: skip
    assert pd.read_csv(tmp_path / "c.tsv", sep="\t").empty
    embed_shard(crops=shard / "crops.npz", checkpoint=tmp_path / "e.pt",
                out_features=tmp_path / "deep.parquet", settings=ENCODER)  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "deep.parquet"),
                                  pd.read_parquet(shard / "deep.parquet"))  # fmt: skip
