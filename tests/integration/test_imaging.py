"""The imaging branch on the tiny demo: its tables, its QC, its privacy, and its incremental
reruns when a validation subject is added."""

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from rdls.demo._generate import _fake_identity
from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import item_rng
from rdls.imaging.shards import shard_index
from tests.integration.conftest import TINY_ANALYSIS, TINY_OWN, TINY_SHEETS, snakemake

pytestmark = pytest.mark.integration
FAMILIES = ("radiomics", "deep")


def features(workdir, family, *, harmonised=True):
    folder = "features" if harmonised else "features/unharmonised"
    return pd.read_parquet(workdir / f"results/imaging/{folder}/{family}.parquet").set_index(
        "subject_id"
    )


def test_every_subject_has_both_feature_families(tiny_run):
    sheet = pd.read_csv(tiny_run / "results/demo/tiny/sheets/subjects.tsv", sep="\t")
    for family in FAMILIES:
        table = features(tiny_run, family)
        assert sorted(table.index) == sorted(sheet["subject_id"])
        assert (
            table[["cohort", "centre"]].to_dict()
            == sheet.set_index("subject_id")[["cohort", "centre"]].loc[table.index].to_dict()
        )
        values = table.drop(columns=["cohort", "centre"])
        assert np.isfinite(values.to_numpy()).all()
        assert values.shape[1] >= (50 if family == "radiomics" else 2)
    exclusions = pd.read_csv(tiny_run / "results/qc/exclusions.tsv", sep="\t")
    assert list(exclusions.columns) == ["item_id", "kind", "step", "reason"]
    assert exclusions.empty


def test_stability_filter_keeps_exactly_the_stable_features(tiny_run):
    for family in FAMILIES:
        icc = pd.read_csv(tiny_run / f"results/imaging/stability/{family}_icc.tsv", sep="\t")
        kept = set(icc.loc[icc["kept"], "feature"])
        assert (icc.loc[icc["kept"], "icc"] >= 0.75).all()
        assert set(features(tiny_run, family).columns) - {"cohort", "centre"} == kept
        assert (icc["subjects"] == 10).all()


def test_combat_keeps_the_reference_centre_and_hides_the_centre(tiny_run):
    report = pd.read_csv(tiny_run / "results/imaging/harmonisation.tsv", sep="\t")
    report = report[report["cohort"] == "all"]
    radiomics = report.set_index("family").loc["radiomics"]
    assert radiomics["method"] == "combat"
    assert (
        radiomics["centre_balanced_accuracy_after"] < radiomics["centre_balanced_accuracy_before"]
    )
    reference = radiomics["reference_centre"]
    after, before = (
        features(tiny_run, "radiomics"),
        features(tiny_run, "radiomics", harmonised=False),
    )
    at_reference = after.index[after["centre"] == reference]
    columns = [c for c in after.columns if c not in ("cohort", "centre")]
    np.testing.assert_allclose(
        after.loc[at_reference, columns], before.loc[at_reference, columns], rtol=1e-9
    )


def test_the_saved_harmonisation_rests_on_training_and_reproduces_the_tables(tiny_run):
    from rdls.imaging.harmonise import ComBatModel

    report = pd.read_csv(tiny_run / "results/imaging/harmonisation.tsv", sep="\t")
    report = report.set_index(["family", "cohort"])
    for family in FAMILIES:
        model = ComBatModel.load(tiny_run / f"results/imaging/harmonisation/{family}.json")
        after = features(tiny_run, family)
        before = features(tiny_run, family, harmonised=False)
        training = before.index[before["cohort"] == "training"]
        # Fitted on the training cohort only; the external and biological centres (C, D),
        # which training lacks, estimated from their own subjects.
        fits = model.centres
        assert {c: f.source for c, f in fits.items()} == {
            model.reference: "reference",
            ({"A", "B"} - {model.reference}).pop(): "training",
            "C": "own_images",
            "D": "own_images",
        }
        for centre in ("A", "B"):
            assert fits[centre].subjects == (before.loc[training, "centre"] == centre).sum()
        assert fits["C"].subjects == (before["centre"] == "C").sum()
        assert model.inmoose_deviation < 1e-8
        # The saved model alone gives the run's harmonised table.
        columns = [c for c in after.columns if c not in ("cohort", "centre")]
        applied = model.apply(before.drop(columns=["cohort", "centre"]), before["centre"])
        np.testing.assert_allclose(applied.loc[after.index, columns], after[columns], atol=1e-9)
        assert report.loc[(family, "external_validation"), "estimated_from_own_images"] == (
            f"C ({fits['C'].subjects})"
        )


def test_encoder_logs_its_training_and_saves_curve_and_checkpoint(tiny_run):
    log = (tiny_run / "logs/imaging/encoder/train.log").read_text()
    assert "training the encoder on 24 subjects" in log
    assert "epoch 4/4 loss" in log
    curve = pd.read_csv(tiny_run / "results/imaging/encoder/training_curve.tsv", sep="\t")
    assert curve["epoch"].tolist() == [1, 2, 3, 4] and np.isfinite(curve["loss"]).all()
    assert (tiny_run / "results/imaging/encoder/encoder.pt").stat().st_size > 100_000
    for cohort in ("training", "internal_validation", "external_validation", "biological"):
        assert (tiny_run / f"results/imaging/montages/{cohort}.png").stat().st_size > 20_000


def test_dicom_identifiers_reach_no_output_or_log(tiny_run):
    """The demo's DICOM subjects carry made-up names, IDs and birth dates in every header."""
    mri = pd.read_csv(tiny_run / "results/demo/tiny/sheets/mri.tsv", sep="\t")
    dicom = [i for i, image in enumerate(mri["image"]) if not image.endswith(".nii.gz")]
    assert dicom
    secrets = [value.encode() for index in dicom for value in _fake_identity(42, index).values()]
    checked = 0
    for folder in ("results/imaging", "results/qc", "results/cohort", "logs", "benchmarks"):
        for path in (tiny_run / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".gz":
                    data = gzip.decompress(data)
                for secret in secrets:
                    assert secret not in data, f"{secret!r} found in {path}"
                checked += 1
    assert checked > 50


@pytest.fixture(scope="module")
def own_cohort(tiny_run, tmp_path_factory):
    """The finished tiny run, switched from the demo to its sheets as a user's own cohort."""
    workdir = tmp_path_factory.mktemp("own") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    (workdir / "override.yaml").write_text(TINY_OWN.format(sheets=TINY_SHEETS) + TINY_ANALYSIS)
    return workdir


def planned_jobs(workdir) -> dict[str, int]:
    run = snakemake(workdir, "-n", "--configfile", "override.yaml")
    text = run.stdout + run.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:")[1].split("total")[0]
    counts = {}
    for line in stats.splitlines()[3:]:
        if line.strip():
            rule, count = line.split()
            counts[rule] = int(count)
    return counts


def test_adding_a_validation_subject_reruns_only_its_shard(own_cohort):
    # Switching to the same sheets changes no result; only the report, which says where the
    # data came from (the demo or the user's sheets), is rewritten.
    switched = planned_jobs(own_cohort)
    assert set(switched) <= {"report_subtype_biology", "all"}, switched
    snakemake(own_cohort, "--cores", "2", "--configfile", "override.yaml")
    root = own_cohort / "results/demo/tiny"
    subjects = pd.read_csv(root / "sheets/subjects.tsv", sep="\t", dtype=str)
    mri = pd.read_csv(root / "sheets/mri.tsv", sep="\t", dtype=str)
    new = "X0001"
    template = subjects[subjects["cohort"] == "external_validation"].iloc[0].copy()
    template["subject_id"] = new
    image, mask = root / "mri/X0001_t2w.nii.gz", root / "mri/X0001_tumour_mask.nii.gz"
    write_subject_mri(subtype="RDLS2", centre=template["centre"], image_path=image,
                      mask_path=mask, shape=(96, 96, 24), rng=item_rng(7, "mri", 0))  # fmt: skip
    pd.concat([subjects, template.to_frame().T]).to_csv(root / "sheets/subjects.tsv", sep="\t",
                                                         index=False)  # fmt: skip
    row = mri.iloc[0].copy()
    row[["subject_id", "image", "mask"]] = [new, str(image.relative_to(own_cohort)),
                                            str(mask.relative_to(own_cohort))]  # fmt: skip
    pd.concat([mri, row.to_frame().T]).to_csv(root / "sheets/mri.tsv", sep="\t", index=False)

    plan = planned_jobs(own_cohort)
    per_shard = {"mri_ingest", "mri_preprocess", "mri_radiomics", "mri_embed"}
    assert {rule: plan.get(rule) for rule in per_shard} == dict.fromkeys(per_shard, 1)
    assert "mri_train_encoder" not in plan and "imaging_stability" not in plan
    assert plan.get("mri_montage") == 1  # the external cohort's montage only
    # The aggregates read every subject; the subtype and survival ones are seconds each.
    # Everything compared by subtype follows the new assignments: the slide metrics, the
    # cells' subtype labels, and the bulk contrasts (planned once the checkpoint has run).
    aggregates = {"mri_montage", "imaging_features", "qc_exclusions", "cohort_overview", "all",
                  "subtype_features", "subtype_consensus", "subtype_classifier",
                  "subtype_assign", "subtype_table_one", "survival_km", "survival_cox",
                  "rrs_fit", "rrs_score", "rrs_km", "survival_compare_models",
                  "wsi_by_subtype", "scrna_annotate", "scrna_by_subtype", "bulk_deseq2",
                  "bulk_de_summary", "bulk_overview", "bulk_gsea", "bulk_gsea_summary",
                  "bulk_scores", "bulk_deconvolve", "report_subtype_biology"}  # fmt: skip
    assert set(plan) <= per_shard | aggregates

    before = {f: features(own_cohort, f, harmonised=False) for f in FAMILIES}
    training = own_cohort / "results/subtypes/consensus/training_subtypes.tsv"
    training_before = pd.read_csv(training, sep="\t")
    snakemake(own_cohort, "--cores", "2", "--configfile", "override.yaml")
    shard = f"external_validation-{shard_index(new, 2):02d}"
    assert (
        new
        in pd.read_csv(own_cohort / f"results/imaging/ingested/{shard}.tsv", sep="\t")[
            "subject_id"
        ].tolist()
    )
    for family in FAMILIES:
        after = features(own_cohort, family, harmonised=False)
        assert new in after.index
        pd.testing.assert_frame_equal(after.drop(index=new), before[family])
    # The new subject is assigned by the locked classifier; training is untouched.
    assignments = pd.read_csv(own_cohort / "results/subtypes/assignments.tsv", sep="\t")
    assert assignments.set_index("subject_id").loc[new, "source"] == "classifier"
    pd.testing.assert_frame_equal(pd.read_csv(training, sep="\t"), training_before)
