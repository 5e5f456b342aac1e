"""scripts/benchmark_workflow.py reads every rule's benchmark file and reports from them."""

import importlib.util
import re

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "benchmark_workflow", REPO / "scripts" / "benchmark_workflow.py"
)
benchmark_workflow = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark_workflow)


def test_every_rule_has_a_benchmark_file_the_script_maps_back_to_it():
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", smk.read_text(), re.M))
    mapped = {rule for _, rule in benchmark_workflow.benchmark_patterns()}
    assert mapped == rules
    patterns = dict((rule, regex) for regex, rule in benchmark_workflow.benchmark_patterns())
    assert patterns["wsi_quantify"].match("benchmarks/wsi/quantified/H0001.tsv")
    assert not patterns["wsi_quantify"].match("benchmarks/wsi/quantified/a/H0001.tsv")


def test_rule_table_reads_the_benchmark_files(tmp_path):
    folder = tmp_path / "benchmarks/wsi/quantified"
    folder.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for slide, seconds in (("H0001", 4.0), ("H0002", 6.0)):
        row = f"{seconds}\t0:00:04\t300\t1\t1\t1\t0\t0\t0\t3.5\n"
        (folder / f"{slide}.tsv").write_text(header + row)
    table = benchmark_workflow.rule_table(tmp_path)
    assert set(table["rule"]) == {"wsi_quantify"}
    summary = benchmark_workflow._per_rule(table).loc["wsi_quantify"]
    assert (summary["jobs"], summary["s_sum"], summary["s_median"], summary["cpu_sum"]) == (
        2,
        10.0,
        5.0,
        7.0,
    )


def test_the_section_replaces_its_old_self_in_the_doc(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    measurements = {"machine": {"cpus": 2, "platform": "x", "date": "2026-11-27"}}
    benchmark_workflow.write_doc(doc, benchmark_workflow.report(measurements))
    benchmark_workflow.write_doc(doc, benchmark_workflow.report(measurements))
    text = doc.read_text()
    assert text.count(benchmark_workflow.BEGIN) == 1 and text.count(benchmark_workflow.END) == 1
    assert text.startswith("# Benchmarks\n\nkept\n")
