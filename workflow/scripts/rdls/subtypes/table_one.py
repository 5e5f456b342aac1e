"""Table 1: the subjects' characteristics by subtype in each cohort, with tests.

One block per cohort. Continuous variables are summarised as ``median [Q1, Q3]`` and
compared across subtypes by the Kruskal-Wallis test. Categorical variables are counted as
``n (%)``, the percentage taken over the group's subjects with a known value, and compared
by Pearson's chi-square test of independence (no continuity correction) when every expected
count is at least 5, otherwise by Fisher's exact test: exact for a 2 x 2 table, and for a
larger table by scipy's Monte Carlo version (random tables with the observed margins, seeded,
so reruns give the same p-value). Missing values are counted in a ``missing`` row and left
out of the tests. A variable with a single level, or a cohort with a single subtype, is not
tested; the ``test`` column says why.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
from scipy import stats

from rdls.errors import InputError
from rdls.errors import some as _names

FIXED_COLUMNS = ("cohort", "variable", "level", "overall")
TEST_COLUMNS = ("test", "statistic", "p_value")
MISSING = "missing"
_SHOWN = 5


def table_one(
    subjects: pd.DataFrame,
    *,
    group: str = "subtype",
    cohort: str = "cohort",
    continuous: list[str],
    categorical: list[str],
    decimals: int = 1,
    monte_carlo_tables: int = 10000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 1 in long format: one row per cohort, variable and level.

    Parameters
    ----------
    subjects : pandas.DataFrame
        One row per subject with the ``group`` and ``cohort`` columns and every variable.
    group, cohort : str
        Columns with the subtype and the cohort of each subject.
    continuous, categorical : list of str
        Variables summarised as medians or as counts.
    decimals : int
        Decimals of medians, quartiles and percentages.
    monte_carlo_tables : int
        Random tables drawn for Fisher's exact test on tables larger than 2 x 2.
    seed : int
        Seeds those draws (each test starts from this seed).

    Returns
    -------
    pandas.DataFrame
        Columns ``cohort``, ``variable``, ``level`` (empty for a continuous variable,
        ``missing`` for the count of missing values), ``overall``, one column per group
        (sorted; empty where the group is absent from a cohort), ``test``, ``statistic`` and
        ``p_value``. Each cohort starts with a row ``variable="n"`` of subject counts. A
        variable's test is repeated on each of its rows.

    Raises
    ------
    rdls.errors.InputError
        A column is absent, a variable is listed twice, a group or cohort value is missing,
        a group name clashes with a fixed column, or a continuous variable is not numeric.
    """
    _check(subjects, group=group, cohort=cohort, continuous=continuous, categorical=categorical)
    groups = _natural_sorted({str(g) for g in subjects[group]})
    clash = [g for g in groups if g in FIXED_COLUMNS + TEST_COLUMNS]
    if clash:
        raise InputError(
            f"Table 1: group name(s) {_names(clash)} in column {group!r} clash with the table's "
            f"own columns ({', '.join(FIXED_COLUMNS + TEST_COLUMNS)}). Rename the groups."
        )
    # positional index; errors name subjects by subject_id (a column, else the old index)
    frame = subjects.reset_index(drop=True).assign(subject_id=_ids(subjects))
    frame["__group"] = subjects[group].astype(str).to_numpy()
    numeric = {name: _numeric(frame, name) for name in continuous}
    settings = {"decimals": decimals, "tables": monte_carlo_tables, "seed": seed}
    rows: list[dict] = []
    for cohort_name in _in_order(subjects[cohort]):
        part = frame[frame[cohort] == cohort_name]
        present = _natural_sorted(set(part["__group"]))
        labels = part["__group"]
        base = {"cohort": str(cohort_name)}
        counts = labels.value_counts()
        rows.append(
            {
                **base,
                "variable": "n",
                "level": "",
                "overall": str(len(part)),
                **{g: str(int(counts[g])) if g in present else "" for g in groups},
                "test": "",
                "statistic": np.nan,
                "p_value": np.nan,
            }
        )
        for name in [*continuous, *categorical]:
            if name in numeric:
                block = _continuous(numeric[name][part.index], labels, groups, present, settings)
            else:
                block = _categorical(part[name], labels, groups, present, settings)
            rows.extend({**base, "variable": name, **row} for row in block)
    columns = [*FIXED_COLUMNS, *groups, *TEST_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    table["statistic"] = table["statistic"].astype(float)
    table["p_value"] = table["p_value"].astype(float)
    return table


def render_table_one(table: pd.DataFrame, *, title: str = "Table 1") -> str:
    """A self-contained HTML fragment of :func:`table_one`'s output, one table per cohort.

    Each ``<table>`` has a caption (title, cohort and number of subjects), the groups present
    in that cohort as columns and a footer explaining the summaries and the tests.
    """
    missing = [c for c in (*FIXED_COLUMNS, *TEST_COLUMNS) if c not in table.columns]
    if missing:
        raise InputError(
            f"Table 1 to render: column(s) {_names(missing)} missing; pass the output of "
            "table_one unchanged."
        )
    all_groups = [c for c in table.columns if c not in FIXED_COLUMNS + TEST_COLUMNS]
    parts = [f'<div class="table-one">\n<style>{_STYLE}</style>']
    for cohort_name in _in_order(table["cohort"]):
        block = table[table["cohort"] == cohort_name]
        groups = [g for g in all_groups if (block[g].fillna("").astype(str) != "").any()]
        n_row = block[block["variable"] == "n"]
        total = n_row["overall"].iloc[0] if len(n_row) else str(len(block))
        width = 3 + len(groups) + 3
        parts.append("<table>")
        parts.append(f"<caption>{_esc(title)}: {_esc(cohort_name)} (n = {_esc(total)})</caption>")
        header = ["Variable", "Level", "Overall", *groups, "Test", "Statistic", "p"]
        parts.append(
            "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead>"
        )
        parts.append("<tbody>")
        for variable, rows in block.groupby("variable", sort=False):
            span = len(rows)
            for i, (_, row) in enumerate(rows.iterrows()):
                cells = []
                if i == 0:
                    cells.append(f'<th scope="row" rowspan="{span}">{_esc(variable)}</th>')
                cells.append(f"<td>{_esc(row['level'])}</td>")
                cells.append(f"<td>{_esc(row['overall'])}</td>")
                cells.extend(f"<td>{_esc(_blank(row[g]))}</td>" for g in groups)
                if i == 0:
                    cells.append(f'<td rowspan="{span}">{_esc(row["test"])}</td>')
                    cells.append(
                        f'<td rowspan="{span}">{_esc(format_statistic(row["statistic"]))}</td>'
                    )
                    cells.append(f'<td rowspan="{span}">{_esc(format_p(row["p_value"]))}</td>')
                parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody>")
        parts.append(f'<tfoot><tr><td colspan="{width}">{_esc(_NOTES)}</td></tr></tfoot>')
        parts.append("</table>")
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def format_p(p: float) -> str:
    """``<0.001`` for small p-values, else three decimals; empty when not tested."""
    if p is None or pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_statistic(value: float) -> str:
    """Three significant digits; empty when not tested."""
    if value is None or pd.isna(value):
        return ""
    return f"{value:.3g}"


_NOTES = (
    "Continuous variables: median [Q1, Q3], Kruskal-Wallis test. Categorical variables: "
    "n (% of the group's subjects with a known value), Pearson's chi-square test when every "
    "expected count is at least 5, otherwise Fisher's exact test (Monte Carlo for tables "
    "larger than 2 x 2). Missing values are counted in 'missing' rows and left out of tests."
)
_STYLE = (
    ".table-one table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    ".table-one caption{font-weight:bold;text-align:left;padding:4px 0}"
    ".table-one th,.table-one td{border-top:1px solid #ccc;padding:2px 8px;text-align:left;"
    "vertical-align:top}"
    ".table-one tfoot td{font-size:85%;color:#555}"
)


def _continuous(values: pd.Series, labels: pd.Series, groups, present, settings) -> list[dict]:
    decimals = settings["decimals"]
    row = {"level": "", "overall": _median_iqr(values, decimals)}
    for g in groups:
        row[g] = _median_iqr(values[labels == g], decimals) if g in present else ""
    samples = [values[(labels == g) & values.notna()].to_numpy() for g in present]
    samples = [s for s in samples if s.size]
    if len(present) < 2:
        test = _not_tested("one group in this cohort")
    elif len(samples) < 2:
        test = _not_tested("fewer than two groups with values")
    elif np.unique(np.concatenate(samples)).size < 2:
        test = _not_tested("all values equal")
    else:
        result = stats.kruskal(*samples)
        test = {"test": "Kruskal-Wallis", "statistic": result.statistic, "p_value": result.pvalue}
    rows = [{**row, **test}]
    if values.isna().any():
        rows.append({**_missing_row(values, labels, groups, present), **test})
    return rows


def _categorical(values: pd.Series, labels: pd.Series, groups, present, settings) -> list[dict]:
    decimals = settings["decimals"]
    text = _level_text(values)
    levels = _natural_sorted(set(text.dropna()))
    known = text.notna()
    rows = []
    for level in levels:
        row = {"level": level, "overall": _count_pct(text, known, level, decimals)}
        for g in groups:
            member = labels == g
            row[g] = (
                _count_pct(text[member], known[member], level, decimals) if g in present else ""
            )
        rows.append(row)
    table = pd.crosstab(labels[known], text[known]).reindex(index=present, columns=levels)
    table = table.fillna(0).to_numpy(dtype=np.int64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if len(present) < 2:
        test = _not_tested("one group in this cohort")
    elif not levels:
        test = _not_tested("no known values")
    elif len(levels) < 2:
        test = _not_tested("one level")
    elif table.shape[0] < 2:
        test = _not_tested("fewer than two groups with values")
    else:
        test = _independence_test(table, settings)
    rows = [{**row, **test} for row in rows]
    if not known.all():
        rows.append({**_missing_row(values, labels, groups, present), **test})
    return rows


def _independence_test(table: np.ndarray, settings) -> dict:
    expected = stats.contingency.expected_freq(table)
    if (expected >= 5).all():
        result = stats.chi2_contingency(table, correction=False)
        return {"test": "chi-square", "statistic": result.statistic, "p_value": result.pvalue}
    if table.shape == (2, 2):
        result = stats.fisher_exact(table)
        return {"test": "Fisher's exact", "statistic": result.statistic, "p_value": result.pvalue}
    method = stats.MonteCarloMethod(
        n_resamples=settings["tables"], rng=np.random.default_rng(settings["seed"])
    )
    result = stats.fisher_exact(table, method=method)
    return {
        "test": f"Fisher's exact (Monte Carlo, {settings['tables']} tables)",
        # scipy returns length-1 arrays for some small tables
        "statistic": float(np.ravel(result.statistic)[0]),
        "p_value": float(np.ravel(result.pvalue)[0]),
    }


def _not_tested(reason: str) -> dict:
    return {"test": f"not tested: {reason}", "statistic": np.nan, "p_value": np.nan}


def _missing_row(values: pd.Series, labels: pd.Series, groups, present) -> dict:
    missing = values.isna()
    row = {"level": MISSING, "overall": str(int(missing.sum()))}
    for g in groups:
        row[g] = str(int(missing[labels == g].sum())) if g in present else ""
    return row


def _median_iqr(values: pd.Series, decimals: int) -> str:
    known = values.dropna()
    if known.empty:
        return "n/a"
    q1, median, q3 = np.quantile(known.to_numpy(dtype=float), [0.25, 0.5, 0.75])
    return f"{median:.{decimals}f} [{q1:.{decimals}f}, {q3:.{decimals}f}]"


def _count_pct(text: pd.Series, known: pd.Series, level: str, decimals: int) -> str:
    n = int((text[known] == level).sum())
    total = int(known.sum())
    if total == 0:
        return "0"
    return f"{n} ({100.0 * n / total:.{decimals}f}%)"


def _level_text(values: pd.Series) -> pd.Series:
    """Category labels as text; whole-number floats (1.0 read from a TSV) written as 1."""
    known = values.dropna()
    if pd.api.types.is_bool_dtype(known):
        text = known.map(str)
    elif pd.api.types.is_numeric_dtype(known) and np.all(np.mod(known.to_numpy(float), 1) == 0):
        text = known.map(lambda v: str(int(v)))
    else:
        text = known.map(str)
    return text.reindex(values.index)


def _numeric(subjects: pd.DataFrame, name: str) -> pd.Series:
    raw = subjects[name]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].astype(str).unique()[:_SHOWN])
        raise InputError(
            f"Table 1: continuous variable {name!r} has non-numeric values ({examples}) for "
            f"subject(s) {_names(_ids(subjects)[bad.to_numpy()])}. Fix the values, or list "
            f"{name!r} under categorical variables."
        )
    return values.astype(float)


def _check(subjects, *, group, cohort, continuous, categorical) -> None:
    if not isinstance(subjects, pd.DataFrame):
        raise InputError("Table 1: subjects must be a pandas DataFrame.")
    continuous, categorical = list(continuous), list(categorical)
    both = sorted(set(continuous) & set(categorical))
    if both:
        raise InputError(
            f"Table 1: variable(s) {_names(both)} listed as both continuous and categorical. "
            "List each variable once."
        )
    repeated = sorted(
        {v for v in continuous + categorical if (continuous + categorical).count(v) > 1}
    )
    if repeated:
        raise InputError(f"Table 1: variable(s) {_names(repeated)} listed twice. List each once.")
    if group in continuous + categorical or cohort in continuous + categorical:
        raise InputError(
            f"Table 1: the group column {group!r} and the cohort column {cohort!r} cannot also "
            "be variables of the table."
        )
    absent = [c for c in [group, cohort, *continuous, *categorical] if c not in subjects.columns]
    if absent:
        raise InputError(
            f"Table 1: column(s) {_names(absent)} not in the subjects table (columns: "
            f"{_names(subjects.columns)}). Add them or remove them from the variables."
        )
    if subjects.empty:
        raise InputError("Table 1: the subjects table has no rows.")
    ids = _ids(subjects)
    for column, what in ((group, "group"), (cohort, "cohort")):
        unknown = subjects[column].isna().to_numpy()
        if unknown.any():
            raise InputError(
                f"Table 1: subject(s) {_names(ids[unknown])} have no {what} (column "
                f"{column!r}). Assign every subject before tabulating, or leave them out."
            )


def _ids(subjects: pd.DataFrame) -> np.ndarray:
    if "subject_id" in subjects.columns:
        return subjects["subject_id"].astype(str).to_numpy()
    return subjects.index.astype(str).to_numpy()


def _in_order(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if (values == c).any()]
    return list(pd.unique(values))


def _natural_sorted(items) -> list[str]:
    def key(text: str):
        return [
            (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", text)
        ]

    return sorted(items, key=key)


def _blank(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _esc(value) -> str:
    return html.escape(str(value), quote=True)
