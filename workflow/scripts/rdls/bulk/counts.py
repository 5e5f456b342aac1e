"""The bulk count matrix: read, checked against the bulk sheet, low-count genes filtered.

A count matrix is genes x samples, tab- or comma-separated. Two layouts are read:

- a plain table: the first column holds the gene (any header), then one column per sample;
- featureCounts output: a ``#`` comment line, then ``Geneid, Chr, Start, End, Strand,
  Length`` and one column per BAM file. A BAM column is matched to its sample by its file
  name without folder and ``.bam`` (and STAR's ``Aligned.sortedByCoord.out`` suffix).

Every problem is reported at once, each naming the file, the gene (with its row, counted
from 1 after the header line) or the column, and the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

FEATURECOUNTS_ANNOTATION = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
_BAM_SUFFIXES = (".bam", "Aligned.sortedByCoord.out", "Aligned.out", ".sorted", ".")
_NA_TEXT = ("", "NA", "N/A", "NaN", "nan", "NAN", "NULL", "null", "None", "none", "-")
_RAW_COUNTS_HINT = (
    "DESeq2 models raw read counts: give the un-normalised integer counts (featureCounts, "
    "HTSeq, or salmon/RSEM estimates rounded with tximport), not TPM, FPKM or normalised values"
)


def read_counts(path: str | Path, *, sheet: pd.DataFrame) -> pd.DataFrame:
    """Read a genes x samples count matrix and check it against the bulk sheet.

    Parameters
    ----------
    path
        TSV or CSV (optionally gzipped), plain or featureCounts layout (see the module).
    sheet
        The bulk sheet: one row per sample with ``sample_id`` (the matrix's column names).

    Returns
    -------
    pandas.DataFrame
        Integer counts (int64), one row per gene (index named ``gene``) and one column per
        ``sample_id``, in the sheet's order.

    Raises
    ------
    InputError
        Listing every problem: cells that are empty, not numbers, not whole numbers or
        negative; genes named on more than one row; samples of the sheet without a column;
        columns that are not samples of the sheet.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"count matrix '{path}' does not exist. Set the config key sheets.bulk_counts "
            "to the matrix's path, or empty the bulk sheet to leave bulk RNA-seq out."
        )
    table = _read_table(path)
    table = _drop_annotation(table, path, sheet)
    genes = table.iloc[:, 0].fillna("").astype(str).str.strip()
    values = table.iloc[:, 1:]
    samples = [str(s) for s in sheet["sample_id"]]

    problems: list[str] = []
    _check_gene_names(genes, problems)
    _check_columns(list(values.columns), samples, problems)
    numbers = values.apply(
        lambda c: (
            c
            if pd.api.types.is_numeric_dtype(c)
            else pd.to_numeric(c.astype(str).str.strip(), errors="coerce")
        )
    )
    _check_values(values, numbers, genes, problems)
    if problems:
        raise InputError(
            f"{len(problems)} problem(s) in the count matrix '{path}':\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    counts = pd.DataFrame(
        numbers.to_numpy(dtype=np.int64), index=pd.Index(genes, name="gene"), columns=values.columns
    )[samples]
    empty = [sample for sample in samples if counts[sample].sum() == 0]
    if empty:
        # DESeq2 cannot estimate a size factor for a library without reads: it only warns
        # and its results would be wrong for every gene.
        raise InputError(
            f"count matrix '{path}': sample(s) {', '.join(empty)} have no reads (every count "
            "is 0). Check that the right column was exported, or remove the sample from the "
            "bulk sheet."
        )
    log.info("%s: %d genes x %d samples", path, *counts.shape)
    return counts


def filter_low_counts(
    counts: pd.DataFrame, *, min_count: int = 10, min_samples: int = 3
) -> pd.DataFrame:
    """Keep genes with at least ``min_count`` reads in at least ``min_samples`` samples.

    The DESeq2 vignette's pre-filter: ``min_samples`` is the size of the smallest group
    compared, so that a gene expressed in that group alone is kept. ``min_samples`` above
    the number of samples means all samples.
    """
    min_samples = min(int(min_samples), counts.shape[1])
    keep = (counts.to_numpy() >= min_count).sum(axis=1) >= min_samples
    log.info(
        "%d of %d genes have >= %d reads in >= %d samples",
        keep.sum(), len(keep), min_count, min_samples,
    )  # fmt: skip
    return counts.loc[keep]


def counts_per_million(counts: pd.DataFrame) -> pd.DataFrame:
    """Counts scaled to one million per sample (columns); an empty sample stays all zero."""
    totals = counts.sum(axis=0).to_numpy(dtype=float)
    scale = np.divide(1e6, totals, out=np.zeros_like(totals), where=totals > 0)
    return counts * scale


def _read_table(path: Path) -> pd.DataFrame:
    """The table with its header's names; numbers parsed, text kept where a cell is not one."""
    import csv

    comments, header = 0, None
    try:
        with _open_text(path) as handle:
            for line in handle:
                if not line.startswith("#"):
                    header = line
                    break
                comments += 1
    except (UnicodeDecodeError, OSError, EOFError) as error:
        # An Excel workbook, a file in another encoding, or a .gz that is not gzip.
        raise InputError(_unreadable(path, error)) from None
    if header is None:
        raise InputError(f"{path}: the file holds no header line and no counts.")
    sep = "\t" if "\t" in header else ","
    names = [n.strip() for n in next(csv.reader([header.rstrip("\r\n")], delimiter=sep))]
    duplicated = sorted({n for n in names[1:] if names.count(n) > 1})
    if duplicated:
        raise InputError(
            f"{path}: column(s) {some(duplicated)} appear more than once in the header. "
            "Give each sample one column, named by its sample_id."
        )
    # Missing-value spellings count as missing in the sample columns only: the gene column is
    # text, whatever it holds.
    missing = {k: list(_NA_TEXT) for k in range(1, len(names))}
    try:
        table = pd.read_csv(path, sep=sep, skiprows=comments + 1, header=None,
                            names=range(len(names)), dtype={0: str}, keep_default_na=False,
                            na_values=missing)  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as error:
        raise InputError(_unreadable(path, error)) from None
    table.columns = names
    if table.shape[1] < 2 or table.empty:
        raise InputError(
            f"{path}: found {table.shape[1]} column(s) and {len(table)} gene row(s); a count "
            "matrix needs the gene in the first column, one column per sample and one row "
            "per gene."
        )
    return table


def _unreadable(path: Path, error: Exception) -> str:
    return (
        f"{path}: not a readable tab- or comma-separated table ({error}). Save it as UTF-8 "
        "text with one header line, the gene in the first column and one column per sample."
    )


def _open_text(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt")
    return open(path)


def _drop_annotation(table: pd.DataFrame, path: Path, sheet: pd.DataFrame) -> pd.DataFrame:
    """featureCounts' annotation columns dropped and its BAM columns named by sample."""
    if tuple(table.columns[: len(FEATURECOUNTS_ANNOTATION)]) != FEATURECOUNTS_ANNOTATION:
        return table
    table = table.drop(columns=list(FEATURECOUNTS_ANNOTATION[1:]))
    samples = set(sheet["sample_id"].astype(str))
    renamed = {}
    for column in table.columns[1:]:
        if column in samples:
            continue
        stem = _bam_stem(column)
        if stem in samples:
            renamed[column] = stem
    if renamed:
        log.info("%s: featureCounts columns named by sample: %s", path,
                 ", ".join(f"{a} -> {b}" for a, b in renamed.items()))  # fmt: skip
    return table.rename(columns=renamed)


def _bam_stem(column: str) -> str:
    stem = re.split(r"[\\/]", column)[-1]
    changed = True
    while changed:
        changed = False
        for suffix in _BAM_SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem, changed = stem[: -len(suffix)], True
    return stem


def _check_gene_names(genes: pd.Series, problems: list[str]) -> None:
    empty = np.flatnonzero((genes == "").to_numpy()) + 1
    if len(empty):
        problems.append(
            f"row(s) {some(empty, quote=False)}: the gene (first column) is empty. Name the "
            "gene, or delete the row."
        )
    named = genes[genes != ""]
    repeated = named[named.duplicated(keep=False)]
    if len(repeated):
        rows = repeated.groupby(repeated, sort=False).groups
        where = [f"'{gene}' (rows {', '.join(str(i + 1) for i in index[:3])})"
                 for gene, index in rows.items()]  # fmt: skip
        problems.append(
            f"{len(rows)} gene(s) are named on more than one row: {some(where, quote=False)}. "
            "Make the names unique (for example use Ensembl gene IDs) or sum the rows of "
            "each gene."
        )


def _check_columns(columns: list[str], samples: list[str], problems: list[str]) -> None:
    missing = [s for s in samples if s not in columns]
    if missing:
        problems.append(
            f"{len(missing)} sample(s) of the bulk sheet have no column: {some(missing)}. "
            "Add their counts to the matrix, or remove their rows from the bulk sheet."
        )
    extra = [c for c in columns if c not in set(samples)]
    if extra:
        problems.append(
            f"{len(extra)} column(s) are not samples of the bulk sheet: {some(extra)}. Add a "
            "row (sample_id, subject_id) per sample to the bulk sheet, or remove the "
            "column(s) from the matrix (annotation columns too: only the gene may precede "
            "the samples)."
        )


def _check_values(
    values: pd.DataFrame, numbers: pd.DataFrame, genes: pd.Series, problems: list[str]
) -> None:
    """Cells that are missing, not numbers, negative, fractional or infinite."""
    number = numbers.to_numpy(dtype=float)
    missing = values.isna().to_numpy()
    kinds = {
        "empty or NA": missing,
        "not a number": np.isnan(number) & ~missing,
        "negative": number < 0,
        "not a whole number": np.isfinite(number) & (number != np.round(number)),
        "infinite": np.isinf(number),
    }
    fixes = {
        "empty or NA": "write 0 where a gene has no reads in a sample",
        "not a number": "write the number of reads",
        "negative": "counts cannot be negative; check how the matrix was made",
        "not a whole number": _RAW_COUNTS_HINT,
        "infinite": "write the number of reads",
    }
    for kind, mask in kinds.items():
        rows, cols = np.nonzero(mask)
        if not len(rows):
            continue
        cells = [
            f"row {r + 1} (gene '{genes.iloc[r]}'), column '{values.columns[c]}': "
            f"'{'' if missing[r, c] else values.iat[r, c]}'"
            for r, c in zip(rows[:3], cols[:3], strict=True)
        ]
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        problems.append(
            f"{len(rows)} cell(s) {kind}: {'; '.join(cells)}{more}. Fix: {fixes[kind]}."
        )
