"""The workflow's end-to-end benchmark: the demo at the tiny and default scales, the rerun
after adding one patient, and the projection to the study's scale; writes its section of
docs/benchmarks.md.

Usage:
    .venv/bin/python scripts/benchmark_workflow.py [--workdir /tmp/rdls-benchmark]
        [--stages tiny-2,tiny-1,default-2,add-patient] [--doc docs/benchmarks.md]

Each stage runs Snakemake in a fresh working directory under --workdir (add-patient reuses
default-2's) and records its wall time, the CPU time of Snakemake and all its jobs (the
children's rusage, so rules without a `benchmark:` file count too) and the rules'
`benchmark:` files. The measurements of every stage go to --workdir/measurements.json; a
later call with fewer stages keeps the others' and rewrites the section between the markers
in --doc from all of them. Run it on an otherwise idle machine: the numbers are one run's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

STAGES = ("tiny-2", "tiny-1", "default-2", "add-patient", "paper-slice")
# The paper-scale slice: the study's MRI cohort generated, then what the encoder needs (ingest
# and preprocessing of the training shards, the training on all 931 training subjects) and the
# radiomics and embedding of one shard; the rest of the study's scale is projected from it
# and from the default demo.
PAPER_SLICE_SHARD = "training-00"
BEGIN = "<!-- benchmark_workflow.py: begin -->"
END = "<!-- benchmark_workflow.py: end -->"
TARGET_MINUTES = {"tiny": 4, "default": 15}
# The study's size (DESIGN.md): subjects, slides and their size relative to the default
# demo's 4096 x 3072 px, scRNA cells, bulk samples, and subjects in the training cohort.
PAPER = {"subjects": 2060, "training": 931, "slides": 409, "slide_area": 4.0,
         "cells": 35_000, "bulk_samples": 83}  # fmt: skip
# One DESeq2 contrast of 83 samples x 18159 genes with apeGLM, measured on its own by
# scripts/benchmark_transcriptomics.py (docs/benchmarks.md, "At the study's scale").
DESEQ2_PAPER_CONTRAST_S = 323.2
# Which unit each per-item rule's cost is counted in.
UNIT_RULES = {
    "subject": ("mri_ingest", "mri_preprocess", "mri_radiomics", "mri_embed"),
    "slide": ("wsi_tiles", "wsi_quantify"),
    "10k cells": ("scrna_qc", "scrna_integrate", "scrna_annotate"),
    "bulk sample": ("bulk_deseq2", "bulk_gsea", "bulk_overview", "bulk_scores"),
}


def benchmark_patterns() -> list[tuple[re.Pattern, str]]:
    """(regex of a benchmark file, rule) from the rules' `benchmark:` directives."""
    patterns = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=\s*(?:rule|checkpoint) \w+:)", text):
            rule = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            path = re.search(r"benchmark:\s*\n\s*\"([^\"]+)\"", block)
            if rule and path:
                regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path[1]))
                patterns.append((re.compile(regex + "$"), rule[1]))
    return patterns


def rule_table(workdir: Path) -> pd.DataFrame:
    """One row per job from the run's benchmark files: rule, item, seconds, CPU, peak RSS."""
    patterns = benchmark_patterns()
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        relative = str(path.relative_to(workdir))
        rule = next((rule for regex, rule in patterns if regex.match(relative)), None)
        if rule is None:
            continue
        measured = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"rule": rule, "file": relative, "s": float(measured["s"]),
                     "cpu_s": float(measured["cpu_time"]),
                     "max_rss_mb": float(measured["max_rss"])})  # fmt: skip
    return pd.DataFrame(rows)


def run_snakemake(workdir: Path, *args: str) -> dict:
    """Snakemake in workdir; its wall time and the CPU time and peak RSS of it and its jobs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {workdir}:\n{done.stderr[-5000:]}")
    jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", done.stderr)
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "jobs": int(jobs[-1][1]) if jobs else 0,
    }


def deploy(workdir: Path, overrides: str) -> Path:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / "override.yaml").write_text(overrides)
    return workdir


def demo_run(root: Path, scale: str, cores: int) -> dict:
    overrides = f"demo:\n  scale: {scale}\n"
    if scale == "tiny":  # its centres absent from training have 14 and 12 subjects
        overrides += "imaging:\n  harmonisation:\n    min_subjects_per_centre: 10\n"
    workdir = deploy(root / f"{scale}-{cores}", overrides)
    measured = run_snakemake(workdir, "--cores", str(cores), "--configfile", "override.yaml")
    rules = rule_table(workdir)
    measured.update(scale=scale, cores=cores, workdir=str(workdir), units=count_units(workdir),
                    rules=rules.to_dict(orient="records"))  # fmt: skip
    return measured


def paper_slice(root: Path) -> dict:
    workdir = deploy(root / "paper-slice", "demo:\n  scale: paper\n")
    targets = ["results/imaging/encoder/encoder.pt",
               f"results/imaging/radiomics/{PAPER_SLICE_SHARD}.parquet",
               f"results/imaging/embeddings/{PAPER_SLICE_SHARD}.parquet"]  # fmt: skip
    measured = run_snakemake(workdir, *targets, "--cores", "2", "--configfile", "override.yaml")
    measured.update(workdir=str(workdir), rules=rule_table(workdir).to_dict(orient="records"))
    return measured


def add_patient(root: Path) -> dict:
    """The default run switched to its own sheets, then one external-cohort patient added."""
    from rdls.demo._mri import write_subject_mri
    from rdls.demo._plan import item_rng

    workdir = root / "default-2"
    if not (workdir / "results/demo/default/sheets/subjects.tsv").exists():
        raise SystemExit("add-patient needs the default-2 stage's run: run that stage first")
    sheets = "".join(f"  {name}: results/demo/default/sheets/{name}.tsv\n"
                     for name in ("subjects", "mri", "slides", "scrna", "bulk"))  # fmt: skip
    (workdir / "override.yaml").write_text(
        "demo:\n  activate: false\nsheets:\n" + sheets
        + "  bulk_counts: results/demo/default/bulk/counts.tsv\n"
    )  # fmt: skip
    # Switching to the same data as sheets rewrites only the report (it names the source).
    run_snakemake(workdir, "--cores", "2", "--configfile", "override.yaml")
    shutil.rmtree(workdir / "benchmarks")
    root_data = workdir / "results/demo/default"
    subjects = pd.read_csv(root_data / "sheets/subjects.tsv", sep="\t", dtype=str)
    mri = pd.read_csv(root_data / "sheets/mri.tsv", sep="\t", dtype=str)
    new = subjects[subjects["cohort"] == "external_validation"].iloc[0].copy()
    new["subject_id"] = "X0001"
    image, mask = root_data / "mri/X0001_t2w.nii.gz", root_data / "mri/X0001_tumour_mask.nii.gz"
    write_subject_mri(subtype="RDLS2", centre=new["centre"], image_path=image, mask_path=mask,
                      shape=(96, 96, 24), rng=item_rng(7, "mri", 0))  # fmt: skip
    pd.concat([subjects, new.to_frame().T]).to_csv(root_data / "sheets/subjects.tsv", sep="\t",
                                                    index=False)  # fmt: skip
    row = mri.iloc[0].copy()
    row[["subject_id", "image", "mask"]] = ["X0001", str(image.relative_to(workdir)),
                                            str(mask.relative_to(workdir))]  # fmt: skip
    pd.concat([mri, row.to_frame().T]).to_csv(root_data / "sheets/mri.tsv", sep="\t", index=False)
    measured = run_snakemake(workdir, "--cores", "2", "--configfile", "override.yaml")
    measured.update(rules=rule_table(workdir).to_dict(orient="records"))
    return measured


# --- the report ------------------------------------------------------------------------------


def _per_rule(rules: pd.DataFrame) -> pd.DataFrame:
    table = rules.groupby("rule").agg(
        jobs=("s", "size"), s_sum=("s", "sum"), s_median=("s", "median"),
        cpu_sum=("cpu_s", "sum"), rss_max=("max_rss_mb", "max"),
    )  # fmt: skip
    return table.sort_values("s_sum", ascending=False)


def _markdown(table: pd.DataFrame, formats: dict[str, str]) -> str:
    formats = {"jobs": "{:.0f}", **formats}
    header = "| " + " | ".join([table.index.name or "", *table.columns]) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    lines = [header, rule]
    for index, row in table.iterrows():
        cells = [formats.get(column, "{}").format(value) for column, value in row.items()]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines)


def count_units(workdir: Path) -> dict[str, float]:
    """How many of each unit a finished demo run held, read from its sheets and data (before
    add-patient adds one)."""
    import anndata

    sheets = next((workdir / "results/demo").glob("*/sheets"))
    cells = sum(
        anndata.read_h5ad(path, backed="r").n_obs
        for path in (workdir / "results/scrna/qc").glob("*.h5ad")
    )
    return {
        "subject": len(pd.read_csv(sheets / "mri.tsv", sep="\t")),
        "slide": len(pd.read_csv(sheets / "slides.tsv", sep="\t")),
        "10k cells": cells / 10_000,
        "bulk sample": len(pd.read_csv(sheets / "bulk.tsv", sep="\t")),
    }


def _unit_costs(default: dict) -> pd.DataFrame:
    rules = pd.DataFrame(default["rules"])
    units = default["units"]
    rows = {}
    for unit, names in UNIT_RULES.items():
        chosen = rules[rules["rule"].isin(names)]
        rows[unit] = {"units in the default demo": units[unit], "jobs": len(chosen),
                      "job s per unit": chosen["s"].sum() / units[unit],
                      "CPU s per unit": chosen["cpu_s"].sum() / units[unit],
                      "peak RSS MB": chosen["max_rss_mb"].max()}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("unit")


def _projection(default: dict, paper: dict) -> tuple[pd.DataFrame, dict]:
    """CPU time at the study's scale from the default demo's per-unit costs and the paper
    slice's training, and the wall time on c cores as max(longest chain, work / c) (Brent's
    bound, no start-up costs)."""
    costs = _unit_costs(default)
    rules = pd.DataFrame(default["rules"])
    sliced = pd.DataFrame(paper["rules"])
    training = float(sliced.loc[sliced["rule"] == "mri_train_encoder", "s"].sum())
    bulk_contrasts = int((rules["rule"] == "bulk_deseq2").sum())
    per_unit = costs["CPU s per unit"]
    work = {
        "MRI subjects": per_unit["subject"] * PAPER["subjects"],
        "slides": per_unit["slide"] * PAPER["slides"] * PAPER["slide_area"],
        "scRNA cells": per_unit["10k cells"] * PAPER["cells"] / 10_000,
        "bulk DESeq2": DESEQ2_PAPER_CONTRAST_S * bulk_contrasts,
        "encoder training": training,
    }
    itemised = set().union(*UNIT_RULES.values()) | {"mri_train_encoder"}
    # The rest (stability, features, subtypes, survival, summaries, report) grows slowly
    # with n; counted at twice its default-demo cost.
    rest = rules[~rules["rule"].isin(itemised) & ~rules["rule"].str.startswith("demo_")]
    work["aggregates (2x default)"] = 2 * rest["cpu_s"].sum()
    total = sum(work.values())
    # The longest chain: a training shard's ingest and preprocessing, the training, one
    # embedding shard, then the aggregates one after another; DESeq2 runs beside it.
    shard = PAPER["training"] / 4
    chain = (shard * per_unit["subject"] + training
             + work["aggregates (2x default)"])  # fmt: skip
    wall = {cores: max(chain, total / cores) for cores in (2, 16, 64)}
    return pd.DataFrame({"CPU s": work}).rename_axis("part"), {"total": total, "chain": chain,
                                                               "wall": wall}  # fmt: skip


def report(measurements: dict) -> str:
    lines = [BEGIN, "", "## The whole workflow (`scripts/benchmark_workflow.py`)", ""]
    machine = measurements.get("machine", {})
    lines += [f"Measured {machine.get('date', '?')} on {machine.get('cpus', '?')} CPUs "
              f"({machine.get('platform', '?')}), one run per stage, nothing else running "
              "unless said. Job times and peak memory come from the rules' `benchmark:` "
              "files; CPU time is Snakemake's and all its jobs' (rusage of the children).",
              ""]  # fmt: skip
    runs = []
    for stage in ("tiny-2", "tiny-1", "default-2"):
        if stage in measurements:
            m = measurements[stage]
            target = TARGET_MINUTES[m["scale"]] if m["cores"] == 2 else None
            runs.append({"run": f"{m['scale']} demo, --cores {m['cores']}", "jobs": m["jobs"],
                         "wall min": m["wall_s"] / 60, "CPU min": m["cpu_s"] / 60,
                         "target min": target if target else "",
                         "largest job MB": max(r["max_rss_mb"] for r in m["rules"])})  # fmt: skip
    if runs:
        table = pd.DataFrame(runs).set_index("run")
        lines += [_markdown(table, {"wall min": "{:.1f}", "CPU min": "{:.1f}",
                                    "largest job MB": "{:.0f}"}), ""]  # fmt: skip
    if "tiny-1" in measurements and "tiny-2" in measurements:
        speedup = measurements["tiny-1"]["wall_s"] / measurements["tiny-2"]["wall_s"]
        lines += [f"Speed-up of `--cores 2` over `--cores 1` (tiny demo, end to end): "
                  f"**{speedup:.2f}x** (target 1.6x).", ""]  # fmt: skip
    if "add-patient" in measurements and "default-2" in measurements:
        full = measurements["default-2"]
        demo_cpu = sum(r["cpu_s"] for r in full["rules"] if r["rule"].startswith("demo_"))
        added = measurements["add-patient"]
        share = added["cpu_s"] / (full["cpu_s"] - demo_cpu)
        lines += [
            f"Adding one external-cohort patient to the finished default run (its sheets "
            f"as the user's, one MRI added): {added['jobs']} jobs, {added['wall_s']:.0f} s "
            f"wall, {added['cpu_s']:.0f} s CPU, **{100 * share:.1f}%** of the full run's "
            f"{full['cpu_s'] - demo_cpu:.0f} s CPU without the demo's generation "
            f"({100 * added['cpu_s'] / full['cpu_s']:.1f}% with it; target 10%).",
            "",
            _markdown(_per_rule(pd.DataFrame(added["rules"])).head(12),
                      {"s_sum": "{:.1f}", "s_median": "{:.1f}", "cpu_sum": "{:.1f}",
                       "rss_max": "{:.0f}"}),
            "",
        ]  # fmt: skip
    if "default-2" in measurements:
        default = measurements["default-2"]
        lines += ["### Per rule, default demo (`--cores 2`)", "",
                  "Seconds summed over a rule's jobs and their median; CPU seconds summed; "
                  "the largest peak RSS of its jobs.", "",
                  _markdown(_per_rule(pd.DataFrame(default["rules"])),
                            {"s_sum": "{:.1f}", "s_median": "{:.1f}", "cpu_sum": "{:.1f}",
                             "rss_max": "{:.0f}"}), "",
                  "### Per unit (default demo)", "",
                  _markdown(_unit_costs(default), {"units in the default demo": "{:g}",
                                                   "job s per unit": "{:.2f}",
                                                   "CPU s per unit": "{:.2f}",
                                                   "peak RSS MB": "{:.0f}"}), ""]  # fmt: skip
    if "paper-slice" in measurements:
        paper = measurements["paper-slice"]
        lines += ["### Paper-scale slice", "",
                  "The study's MRI cohort (2060 subjects) generated, the four training shards "
                  "ingested and preprocessed, the encoder trained on all 931 training subjects, "
                  f"and shard {PAPER_SLICE_SHARD} through radiomics and embedding: "
                  f"{paper['wall_s'] / 60:.1f} min wall, {paper['cpu_s'] / 60:.1f} min CPU, "
                  f"largest job {max(r['max_rss_mb'] for r in paper['rules']):.0f} MB.", "",
                  _markdown(_per_rule(pd.DataFrame(paper["rules"])),
                            {"s_sum": "{:.1f}", "s_median": "{:.1f}", "cpu_sum": "{:.1f}",
                             "rss_max": "{:.0f}"}), ""]  # fmt: skip
    if "default-2" in measurements and "paper-slice" in measurements:
        work, bound = _projection(measurements["default-2"], measurements["paper-slice"])
        lines += ["### Projected at the study's scale", "",
                  f"{PAPER['subjects']} subjects ({PAPER['training']} in training), "
                  f"{PAPER['slides']} slides of 8192 x 6144 px (4x the default's area), "
                  f"{PAPER['cells']} cells, {PAPER['bulk_samples']} bulk samples: per-unit CPU "
                  "costs above, times the units; the encoder's training and DESeq2 at that "
                  "size as measured (the paper slice; DESeq2 by "
                  "scripts/benchmark_transcriptomics.py).", "",
                  _markdown(work, {"CPU s": "{:.0f}"}), "",
                  f"Total **{bound['total'] / 3600:.1f} CPU hours**; longest chain of jobs "
                  f"{bound['chain'] / 60:.0f} min. Wall time, max(chain, work / cores): "
                  + ", ".join(f"{cores} cores **{seconds / 3600:.1f} h**"
                              for cores, seconds in bound["wall"].items())
                  + ". Per-job start-up (1-3 s) and uneven shards add to this.", ""]  # fmt: skip
    lines.append(END)
    return "\n".join(lines)


def write_doc(doc: Path, section: str) -> None:
    text = doc.read_text()
    if BEGIN in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rdls-benchmark"))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "measurements.json"
    measurements = json.loads(store.read_text()) if store.exists() else {}
    measurements["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(terse=True),
                               "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    for stage in filter(None, args.stages.split(",")):
        if stage not in STAGES:
            raise SystemExit(f"unknown stage {stage!r}: choose from {', '.join(STAGES)}")
        print(f"== {stage}", file=sys.stderr, flush=True)
        if stage == "add-patient":
            measurements[stage] = add_patient(args.workdir)
        elif stage == "paper-slice":
            measurements[stage] = paper_slice(args.workdir)
        else:
            scale, cores = stage.rsplit("-", 1)
            measurements[stage] = demo_run(args.workdir, scale, int(cores))
        print(
            f"   {measurements[stage]['wall_s']:.0f} s wall, "
            f"{measurements[stage]['cpu_s']:.0f} s CPU",
            file=sys.stderr,
            flush=True,
        )
        store.write_text(json.dumps(measurements, indent=1))
    write_doc(args.doc, report(measurements))


if __name__ == "__main__":
    main()
