"""The count matrix: read in both layouts, every bad cell, gene and column named with a fix."""

import gzip

import numpy as np
import pandas as pd
import pytest

from rdls.bulk.counts import counts_per_million, filter_low_counts, read_counts
from rdls.errors import InputError

SHEET = pd.DataFrame({"sample_id": ["S1", "S2", "S3"], "subject_id": ["P1", "P2", "P3"]})


def write(path, text):
    path.write_text(text)
    return path


def test_reads_a_plain_matrix_in_sheet_order(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS3\tS1\tS2\nTP53\t3\t1\t2\nKRAS\t0\t10\t5\n")
    counts = read_counts(path, sheet=SHEET)
    assert list(counts.columns) == ["S1", "S2", "S3"]
    assert counts.index.name == "gene"
    assert counts.loc["TP53"].tolist() == [1, 2, 3]
    assert all(dtype == np.int64 for dtype in counts.dtypes)


def test_reads_csv_with_an_unnamed_gene_column_and_whole_floats(tmp_path):
    path = write(tmp_path / "counts.csv", '"","S1","S2","S3"\n"TP53",1.0,2,3\n"KRAS",4,5,6\n')
    counts = read_counts(path, sheet=SHEET)
    assert counts.loc["TP53"].tolist() == [1, 2, 3]


def test_reads_gzipped_featurecounts_output(tmp_path):
    text = (
        '# Program:featureCounts v2.0.6; Command:"featureCounts" -a genes.gtf\n'
        "Geneid\tChr\tStart\tEnd\tStrand\tLength\taligned/S1.bam\taligned/S2Aligned."
        "sortedByCoord.out.bam\tS3\n"
        "TP53\tchr17\t1\t100\t-\t100\t1\t2\t3\n"
        "KRAS\tchr12\t1\t100\t-\t100\t4\t5\t6\n"
    )
    path = tmp_path / "counts.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    counts = read_counts(path, sheet=SHEET)
    assert counts.loc["KRAS"].tolist() == [4, 5, 6]


def test_missing_file_says_which_key_to_set(tmp_path):
    with pytest.raises(InputError, match=r"does not exist.*sheets\.bulk_counts"):
        read_counts(tmp_path / "nope.tsv", sheet=SHEET)


@pytest.mark.parametrize(
    ("cell", "kind", "fix"),
    [
        ("2.5", "not a whole number", "raw read counts"),
        ("-4", "negative", "cannot be negative"),
        ("", "empty or NA", "write 0"),
        ("NA", "empty or NA", "write 0"),
        ("many", "not a number", "write the number of reads"),
        ("inf", "infinite", "write the number of reads"),
    ],
)
def test_bad_cells_are_named_by_gene_row_and_column(tmp_path, cell, kind, fix):
    path = write(tmp_path / "counts.tsv", f"gene\tS1\tS2\tS3\nTP53\t1\t2\t3\nKRAS\t4\t{cell}\t6\n")
    with pytest.raises(InputError) as error:
        read_counts(path, sheet=SHEET)
    message = str(error.value)
    assert str(path) in message
    assert f"1 cell(s) {kind}" in message
    assert "row 2 (gene 'KRAS'), column 'S2'" in message
    assert fix in message


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\tS3\nTP53\t-1\t2.5\t\n")
    with pytest.raises(InputError, match=r"3 problem\(s\)"):
        read_counts(path, sheet=SHEET)


def test_duplicate_genes_are_named_with_their_rows(tmp_path):
    path = write(tmp_path / "counts.tsv",
                 "gene\tS1\tS2\tS3\nTP53\t1\t2\t3\nKRAS\t1\t1\t1\nTP53\t4\t5\t6\n")  # fmt: skip
    with pytest.raises(InputError, match=r"'TP53' \(rows 1, 3\).*Make the names unique"):
        read_counts(path, sheet=SHEET)


def test_empty_gene_name_is_refused(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\tS3\n\t1\t2\t3\nKRAS\t1\t1\t1\n")
    with pytest.raises(InputError, match=r"row\(s\) 1: the gene \(first column\) is empty"):
        read_counts(path, sheet=SHEET)


def test_sheet_samples_without_a_column_are_named(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\nTP53\t1\t2\n")
    with pytest.raises(InputError, match=r"sample\(s\) of the bulk sheet have no column: 'S3'.*"
                       r"remove their rows from the bulk sheet"):  # fmt: skip
        read_counts(path, sheet=SHEET)


def test_columns_that_are_not_samples_of_the_sheet_are_an_error(tmp_path):
    path = write(tmp_path / "counts.tsv",
                 "gene\tdescription\tS1\tS2\tS3\tS9\nTP53\tp53\t1\t2\t3\t4\n")  # fmt: skip
    with pytest.raises(InputError) as error:
        read_counts(path, sheet=SHEET)
    message = str(error.value)
    assert "2 column(s) are not samples of the bulk sheet: 'description', 'S9'" in message
    assert "Add a row (sample_id, subject_id) per sample" in message


def test_a_column_named_twice_is_refused(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\tS3\tS1\nTP53\t1\t2\t3\t4\n")
    with pytest.raises(InputError, match=r"'S1' appear more than once"):
        read_counts(path, sheet=SHEET)


def test_a_matrix_without_genes_is_refused(tmp_path):
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\tS3\n")
    with pytest.raises(InputError, match=r"0 gene row\(s\)"):
        read_counts(path, sheet=SHEET)


def test_filter_keeps_genes_expressed_in_the_smallest_group():
    counts = pd.DataFrame(
        {"A1": [50, 0, 9, 10], "A2": [50, 0, 9, 10], "B1": [0, 5, 100, 0], "B2": [0, 5, 0, 0]},
        index=["only_in_A", "low", "one_sample", "edge"],
    )
    kept = filter_low_counts(counts, min_count=10, min_samples=2)
    assert kept.index.tolist() == ["only_in_A", "edge"]
    assert filter_low_counts(counts, min_count=10, min_samples=99).empty


def test_counts_per_million_sum_to_a_million_per_sample():
    counts = pd.DataFrame({"A": [1, 3], "B": [0, 0]}, index=["g1", "g2"])
    cpm = counts_per_million(counts)
    assert cpm["A"].tolist() == [250000.0, 750000.0]
    assert cpm["B"].tolist() == [0.0, 0.0]
