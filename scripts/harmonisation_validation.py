"""Validation of the centre harmonisation: the demo run with ComBat locked on training and
without harmonisation, with and without the demo's centre case mix; writes its section of
docs/harmonisation.md.

Usage:
    .venv/bin/python scripts/harmonisation_validation.py [--workdir /tmp/rdls-harmonisation]
        [--scale tiny] [--variants plain,casemix] [--doc docs/harmonisation.md]

For each variant the demo runs once to the subtype assignments with
`imaging.harmonisation.method: combat`, then again with `none` in the same working directory
(only imaging_features and the subtype steps rerun). From each run it reads the centre
predictability before and after harmonisation per cohort (results/imaging/harmonisation.tsv),
the balanced accuracy of the assigned subtypes against the planted ones per cohort, the
assigned subtype proportions per centre against the planted ones (the demo's truth tables,
read here and never by the workflow), and, as a check that does not depend on the clustering,
the external balanced accuracy of a classifier trained on the training cohort's planted
subtypes from each feature family, harmonised and not. Measurements go to
--workdir/measurements.json; the section between the markers in --doc is rewritten from them.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

BEGIN = "<!-- harmonisation_validation.py {scale}: begin -->"
END = "<!-- harmonisation_validation.py {scale}: end -->"
VARIANTS = {"plain": False, "casemix": True}
METHODS = ("combat", "none")
FAMILIES = ("radiomics", "deep")
TARGETS = ("results/subtypes/assignments.tsv", "results/imaging/harmonisation.tsv")
# The tiny demo as the integration tests run it (tests/integration/conftest.py), whose centres
# absent from training have 14 and 12 subjects.
TINY_IMAGING = """\
  shards_per_cohort: 2
  encoder:
    epochs: 4
    batch_size: 12
  stability:
    subjects: 10
"""


def overrides(*, scale: str, case_mix: bool, method: str) -> str:
    """The config override of one run."""
    text = f"demo:\n  scale: {scale}\n  centre_case_mix: {str(case_mix).lower()}\nimaging:\n"
    if scale == "tiny":
        text += TINY_IMAGING
    minimum = 10 if scale == "tiny" else 20
    return (
        text + f"  harmonisation:\n    method: {method}\n    min_subjects_per_centre: {minimum}\n"
    )


def run(workdir: Path, *, scale: str, case_mix: bool, method: str, cores: int) -> float:
    """Snakemake to the assignments in workdir with one harmonisation method; wall seconds."""
    (workdir / "override.yaml").write_text(overrides(scale=scale, case_mix=case_mix, method=method))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               *TARGETS, "--cores", str(cores), "--configfile", "override.yaml"]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{done.stderr[-5000:]}")
    return time.monotonic() - start


def demo_root(workdir: Path, *, scale: str, case_mix: bool) -> Path:
    from rdls.demo import folder_name

    return workdir / "results" / "demo" / folder_name(scale=scale, centre_case_mix=case_mix)


def assignment_accuracy(assigned: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Balanced accuracy of the assigned subtypes against the planted ones, per cohort.

    A subtype the run named that was not planted (k other than 3) counts as wrong.
    """
    from sklearn.metrics import balanced_accuracy_score

    table = assigned.merge(truth[["subject_id", "subtype"]], on="subject_id",
                           suffixes=("", "_planted"))  # fmt: skip
    return {
        str(cohort): float(balanced_accuracy_score(rows["subtype_planted"], rows["subtype"]))
        for cohort, rows in table.groupby("cohort")
    }


def centre_proportions(assigned: pd.DataFrame, planted: pd.DataFrame) -> pd.DataFrame:
    """Per centre and planted subtype: planted, drawn and assigned proportions.

    ``planted`` is the demo's truth/subtype_proportions.tsv (``planted_proportion`` and the
    ``observed_proportion`` actually drawn). Centres without an assigned subject are left out.
    """
    counts = pd.crosstab(assigned["centre"], assigned["subtype"], normalize="index")
    rows = planted[planted["centre"].isin(counts.index)].copy()
    rows["assigned_proportion"] = [
        float(counts.loc[c, s]) if s in counts.columns else 0.0
        for c, s in zip(rows["centre"], rows["subtype"], strict=True)
    ]
    rows["subjects"] = rows["centre"].map(assigned["centre"].value_counts())
    return rows[["centre", "subtype", "subjects", "planted_proportion", "observed_proportion",
                 "assigned_proportion"]].reset_index(drop=True)  # fmt: skip


def supervised_external_accuracy(features: pd.DataFrame, truth: pd.DataFrame) -> float:
    """External balanced accuracy of a classifier trained on training's planted subtypes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = features.merge(truth[["subject_id", "subtype"]], on="subject_id")
    x = table.drop(columns=["subject_id", "cohort", "centre", "subtype"]).to_numpy(dtype=float)
    training = (table["cohort"] == "training").to_numpy()
    external = (table["cohort"] == "external_validation").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    model.fit(x[training], table["subtype"][training])
    return float(balanced_accuracy_score(table["subtype"][external], model.predict(x[external])))


def measure(workdir: Path, root: Path) -> dict:
    """Everything the doc reports from one finished run."""
    truth = pd.read_csv(root / "truth" / "subjects.tsv", sep="\t", dtype={"subject_id": str})
    planted = pd.read_csv(root / "truth" / "subtype_proportions.tsv", sep="\t")
    assigned = pd.read_csv(workdir / "results/subtypes/assignments.tsv", sep="\t",
                           dtype={"subject_id": str})  # fmt: skip
    centres = truth[["subject_id", "centre"]]
    assigned = assigned.merge(centres, on="subject_id") if "centre" not in assigned else assigned
    report = pd.read_csv(workdir / "results/imaging/harmonisation.tsv", sep="\t",
                         keep_default_na=False)  # fmt: skip
    supervised = {}
    for family in FAMILIES:
        stable = pd.read_parquet(workdir / f"results/imaging/features/{family}.parquet")
        raw = pd.read_parquet(workdir / f"results/imaging/features/unharmonised/{family}.parquet")
        supervised[family] = {
            "harmonised": supervised_external_accuracy(stable, truth),
            "unharmonised": supervised_external_accuracy(raw[stable.columns], truth),
        }
    proportions = centre_proportions(assigned, planted)
    return {
        "k": int(assigned.loc[assigned["subtype"].str.startswith("RDLS"), "subtype"].nunique()),
        "accuracy": assignment_accuracy(assigned, truth),
        "proportions": proportions.to_dict(orient="records"),
        "predictability": report.to_dict(orient="records"),
        "supervised": supervised,
    }


def _markdown(table: pd.DataFrame) -> str:
    def cell(value):
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def report(measurements: dict) -> str:
    """The doc's section from the measurements."""
    scale = measurements.get("scale", "tiny")
    lines = [
        BEGIN.format(scale=scale),
        "",
        f"Measured by `scripts/harmonisation_validation.py --scale {scale}` on "
        f"{measurements['machine']['date']} ({measurements['machine']['platform']}).",
        "",
    ]
    for variant in VARIANTS:
        runs = measurements.get(variant)
        if not runs:
            continue
        title = "with the centre case mix" if VARIANTS[variant] else "equal subtype proportions"
        lines += [f"### {scale} demo, {title}", ""]
        combat = runs["combat"]
        rows = [
            {"family": r["family"], "cohort": r["cohort"], "subjects": r["subjects"],
             "centre predictable, before": r["centre_balanced_accuracy_before"],
             "after": r["centre_balanced_accuracy_after"], "chance": r["chance"],
             "fitted in training": r["fitted_in_training"],
             "own images": r["estimated_from_own_images"]}
            for r in combat["predictability"]
        ]  # fmt: skip
        lines += ["Centre predictability (balanced accuracy of predicting the centre; a "
                  "validation cohort pooled with the training cohort):", "",
                  _markdown(pd.DataFrame(rows)), ""]  # fmt: skip
        cohorts = sorted(set(combat["accuracy"]) | set(runs["none"]["accuracy"]))
        rows = [
            {
                "cohort": c,
                "ComBat": combat["accuracy"].get(c, np.nan),
                "unharmonised": runs["none"]["accuracy"].get(c, np.nan),
            }
            for c in cohorts
        ]
        lines += [f"Balanced accuracy of the assigned subtypes against the planted ones (k "
                  f"chosen: ComBat {combat['k']}, unharmonised {runs['none']['k']}):", "",
                  _markdown(pd.DataFrame(rows)), ""]  # fmt: skip
        rows = [
            {
                "family": f,
                "ComBat": combat["supervised"][f]["harmonised"],
                "unharmonised": combat["supervised"][f]["unharmonised"],
            }
            for f in FAMILIES
        ]
        lines += ["External balanced accuracy of a logistic regression trained on the training "
                  "cohort's planted subtypes (the stable features of each family):", "",
                  _markdown(pd.DataFrame(rows)), ""]  # fmt: skip
        both = pd.DataFrame(combat["proportions"]).rename(
            columns={"assigned_proportion": "assigned, ComBat"}
        )
        both["assigned, unharmonised"] = pd.DataFrame(runs["none"]["proportions"])[
            "assigned_proportion"
        ]
        for name in ("ComBat", "unharmonised"):
            gap = (both[f"assigned, {name}"] - both["planted_proportion"]).abs()
            both[f"gap, {name}"] = gap
        lines += ["Assigned subtype proportions per centre against the planted ones "
                  "(`drawn`: the proportion actually drawn for the centre's subjects):", "",
                  _markdown(both.rename(columns={"planted_proportion": "planted",
                                                 "observed_proportion": "drawn"})), ""]  # fmt: skip
        for name in ("ComBat", "unharmonised"):
            worst = both.loc[both[f"gap, {name}"].idxmax()]
            lines.append(f"- {name}: largest gap {worst[f'gap, {name}']:.2f} (centre "
                         f"{worst['centre']}, {worst['subtype']}); target <= 0.10.")  # fmt: skip
        lines.append("")
    lines.append(END.format(scale=scale))
    return "\n".join(lines)


def write_doc(doc: Path, section: str, *, scale: str) -> None:
    """Replace the scale's section of ``doc`` (between its markers), or append it."""
    begin, end = BEGIN.format(scale=scale), END.format(scale=scale)
    text = doc.read_text() if doc.exists() else ""
    if begin in text:
        before, rest = text.split(begin, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rdls-harmonisation"))
    parser.add_argument("--scale", default="tiny", choices=("tiny", "default"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "harmonisation.md")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite --doc from the stored measurements"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "measurements.json"
    measurements = json.loads(store.read_text()) if store.exists() else {}
    if args.report_only:
        write_doc(args.doc, report(measurements), scale=measurements["scale"])
        return
    measurements["scale"] = args.scale
    measurements["machine"] = {"platform": platform.platform(terse=True),
                               "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    for variant in filter(None, args.variants.split(",")):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
        workdir = args.workdir / f"{args.scale}-{variant}"
        if not workdir.exists():
            workdir.mkdir(parents=True)
            shutil.copytree(REPO / "config", workdir / "config")
        case_mix = VARIANTS[variant]
        measurements[variant] = {}
        for method in METHODS:
            print(f"== {args.scale} {variant} {method}", file=sys.stderr, flush=True)
            seconds = run(workdir, scale=args.scale, case_mix=case_mix, method=method,
                          cores=args.cores)  # fmt: skip
            root = demo_root(workdir, scale=args.scale, case_mix=case_mix)
            measurements[variant][method] = {"wall_s": seconds, **measure(workdir, root)}
            store.write_text(json.dumps(measurements, indent=1))
    write_doc(args.doc, report(measurements), scale=args.scale)


if __name__ == "__main__":
    main()
