"""HTML building blocks of the report: numbers, tables, figures, notices and the page.

Every text that comes from a table, a path or the config goes through :func:`esc`; the only
markup is built here. Figures are embedded as base64 PNG (wide ones scaled down to
``MAX_IMAGE_PX`` pixels), so the page needs nothing but itself.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

# Figures wider than this (pixels) are scaled down before embedding: the page shows them at
# most ~1000 CSS pixels wide, so this keeps retina sharpness and a page of a few MB.
MAX_IMAGE_PX = 1800
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NA = "\u2013"  # en dash: not available / not estimated
# Okabe-Ito, as the workflow's figures colour groups (rdls.survival._plots.COLOURS): the same
# subtype has the same colour in the report's cards and in the figures.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)
_P_COLUMN = re.compile(
    r"(^|_)(p|pvalue|p_value|padj|p_adj|p_adjusted|fdr|qvalue|q_value)($|_)", re.IGNORECASE
)


def esc(value) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_num(value, *, digits: int = 3) -> str:
    """A number as a reader wants it: integers as integers, others to ``digits`` significant
    digits, no exponent between 1e-4 and 1e6; missing as an en dash."""
    if is_missing(value):
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isinf(number):
        return "\u221e" if number > 0 else "\u2212\u221e"
    if number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}" if abs(number) >= 10_000 else str(int(number))
    magnitude = abs(number)
    if magnitude >= 1e6 or magnitude < 1e-4:
        mantissa, exponent = f"{number:.{digits - 1}e}".split("e")
        return f"{mantissa} \u00d7 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    if magnitude >= 10 ** (digits - 1):
        return f"{number:,.0f}" if magnitude >= 10_000 else f"{number:.0f}"
    return f"{number:.{digits}g}"


def fmt_p(value) -> str:
    """A p-value: two significant digits, ``< 0.001`` style exponents below 0.001."""
    if is_missing(value):
        return NA
    p = float(value)
    if p >= 0.001:
        return f"{p:.2g}" if p < 0.995 else "1"
    if p <= 0:  # a permutation or bootstrap p of 0: below its resolution
        return "< 0.001"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa} \u00d7 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def fmt_fixed(value, *, decimals: int = 3) -> str:
    """A number with fixed decimals (AUC, C-index), minus sign as in print."""
    if is_missing(value):
        return NA
    return f"{float(value):.{decimals}f}".replace("-", "\u2212")


def fmt_ratio(value) -> str:
    """A hazard ratio: two significant digits below 1, two decimals below 10, fewer above."""
    if is_missing(value):
        return NA
    x = float(value)
    if math.isinf(x):
        return "\u221e"
    if x < 1:
        return f"{x:.2f}" if x >= 0.1 else (f"{x:.2g}" if x > 0 else "0")
    return f"{x:.2f}" if x < 10 else (f"{x:.1f}" if x < 100 else f"{x:,.0f}")


def ci_text(estimate, lower, upper, *, formatter=None) -> str:
    """``estimate (lower–upper)``, or ``(lower to upper)`` where a bound is negative."""
    formatter = formatter or fmt_num
    if is_missing(estimate):
        return NA
    if is_missing(lower) or is_missing(upper):
        return formatter(estimate)
    joiner = " to " if float(lower) < 0 or float(upper) < 0 else "\u2013"
    return f"{formatter(estimate)} ({formatter(lower)}{joiner}{formatter(upper)})"


def fmt_pct(value, *, digits: int = 0) -> str:
    if is_missing(value):
        return NA
    return f"{100 * float(value):.{digits}f}%"


def is_p_column(name: str) -> bool:
    return bool(_P_COLUMN.search(str(name)))


def subtype_colours(subtypes: Iterable[str]) -> dict[str, str]:
    """A fixed colour per subtype in natural order (RDLS2 before RDLS10)."""
    ordered = natural_sorted(set(subtypes))
    return {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(ordered)}


def natural_sorted(items: Iterable) -> list[str]:
    def key(text: str):
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]

    return sorted((str(i) for i in items), key=key)


# --- blocks --------------------------------------------------------------------------------


def notice(text: str, *, kind: str = "info") -> str:
    """A boxed note: ``info`` (branch off, no data), ``warning`` or ``error``."""
    return f'<p class="notice {esc(kind)}">{esc(text)}</p>'


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def details(summary: str, body: str, *, open_: bool = False) -> str:
    state = " open" if open_ else ""
    return f"<details{state}><summary>{esc(summary)}</summary>{body}</details>"


def png_data_uri(path: str | Path, *, max_px: int = MAX_IMAGE_PX) -> str:
    """The PNG at ``path`` as a data URI, scaled down to ``max_px`` wide where wider.

    Raises
    ------
    ValueError
        When the file is not a PNG (the report embeds PNG only).
    """
    data = Path(path).read_bytes()
    if not data.startswith(PNG_MAGIC):
        raise ValueError(f"{path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(_shrunk(data, max_px=max_px)).decode()


def png_bytes_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _shrunk(data: bytes, *, max_px: int) -> bytes:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - matplotlib brings Pillow
        return data
    with Image.open(io.BytesIO(data)) as image:
        if image.width <= max_px:
            return data
        height = max(1, round(image.height * max_px / image.width))
        small = image.resize((max_px, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
        log.info("scaled %dx%d PNG to %dx%d", image.width, image.height, max_px, height)
        return out.getvalue()


def figure(path: str | Path | None, caption: str, *, size: str = "full", alt: str = "") -> str:
    """An embedded PNG with its caption; a notice instead when the file is missing or broken.

    ``size`` is ``full`` (the text width), ``half`` or ``small`` (grids of examples).
    """
    if path is None or not Path(path).is_file():
        return notice(
            f"Figure not available: {caption.split('.')[0]} ({path or 'not produced'}).",
            kind="warning",
        )
    try:
        uri = png_data_uri(path)
    except (OSError, ValueError) as error:
        return notice(f"Figure {path} could not be embedded: {error}", kind="warning")
    return figure_uri(uri, caption, size=size, alt=alt or caption.split(".")[0])


def figure_uri(uri: str, caption: str, *, size: str = "full", alt: str = "") -> str:
    return (
        f'<figure class="{esc(size)}"><img src="{esc(uri)}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def grid(items: Sequence[str], *, columns: int = 2) -> str:
    """Figures side by side: two columns (readable plots) or three (small examples)."""
    return f'<div class="grid cols{int(columns)}">' + "".join(items) + "</div>"


def bullet_list(items: Iterable[str], *, escaped: bool = False) -> str:
    body = "".join(f"<li>{item if escaped else esc(item)}</li>" for item in items)
    return f"<ul>{body}</ul>"


@dataclass
class Column:
    """How one column of a table is shown: its header and a formatter of one value."""

    header: str
    format: object = None  # callable(value) -> str, or None for the default


def table(
    frame: pd.DataFrame,
    *,
    caption: str,
    columns: Mapping[str, str | Column] | None = None,
    max_rows: int | None = 40,
    source: str | Path | None = None,
    index_header: bool = True,
) -> str:
    """An HTML table of ``frame`` with a caption, rounded sensibly.

    Parameters
    ----------
    columns : mapping of column name to header (or :class:`Column`), optional
        The columns shown, in order, with their headers; absent columns are skipped.
        Default: every column under its own name.
    max_rows : int, optional
        Rows shown; the caption says how many were left out and where the full table is.
    source : path, optional
        The TSV the table comes from, named in the caption.
    index_header : bool
        Render the first column as row headers (``<th scope="row">``).

    Numbers are right-aligned: p-values (columns named p, p_value, padj, fdr...) by
    :func:`fmt_p`, integers as integers, others to three significant digits; missing as an
    en dash.
    """
    if columns is None:
        columns = {c: str(c) for c in frame.columns}
    shown = {
        name: (spec if isinstance(spec, Column) else Column(str(spec)))
        for name, spec in columns.items()
        if name in frame.columns
    }
    total = len(frame)
    rows = frame if max_rows is None or total <= max_rows else frame.head(max_rows)
    caption_text = esc(caption)
    if len(rows) < total:
        caption_text += esc(f" First {len(rows)} of {total} rows.")
    if source:
        caption_text += f' <span class="source">Full table: <code>{esc(source)}</code></span>'
    head = "".join(f'<th scope="col">{esc(c.header)}</th>' for c in shown.values())
    body = []
    for _, row in rows.iterrows():
        cells = []
        for i, (name, column) in enumerate(shown.items()):
            text, numeric = _cell(row[name], name, column)
            cls = ' class="num"' if numeric else (' class="na"' if text == NA else "")
            tag = "th" if (i == 0 and index_header) else "td"
            scope = ' scope="row"' if tag == "th" else ""
            cells.append(f"<{tag}{scope}{cls}>{esc(text)}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{max(1, len(shown))}" class="na">no rows</td></tr>')
    return (
        f'<figure class="table"><figcaption>{caption_text}</figcaption>'
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></figure>"
    )


def _cell(value, name: str, column: Column) -> tuple[str, bool]:
    if column.format is not None:
        text = column.format(value)
        return str(text), _is_number(value)
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return NA, False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if _is_number(value):
        return (fmt_p(value) if is_p_column(name) else fmt_num(value)), True
    return str(value), False


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


# --- the page ------------------------------------------------------------------------------


@dataclass
class Section:
    """One section of the report: an anchor, a title, its HTML body and optional subsections."""

    anchor: str
    title: str
    body: str
    subsections: list[tuple[str, str]] = field(default_factory=list)  # (anchor, title)


def page(*, title: str, subtitle: str, sections: Sequence[Section], footer: str = "") -> str:
    """The whole report: a table of contents beside the sections, one style sheet, no script."""
    toc = []
    for number, section in enumerate(sections, start=1):
        subs = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in section.subsections)
        toc.append(
            f'<li><a href="#{esc(section.anchor)}">{number}. {esc(section.title)}</a>'
            + (f"<ol>{subs}</ol>" if subs else "")
            + "</li>"
        )
    body = "".join(
        f'<section class="main" id="{esc(s.anchor)}"><h2>{n}. {esc(s.title)}</h2>{s.body}</section>'
        for n, s in enumerate(sections, start=1)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<nav class="toc" aria-label="Contents"><p class="toc-title">Contents</p>
<ol>{"".join(toc)}</ol></nav>
<main>
<header><h1>{esc(title)}</h1><p class="subtitle">{esc(subtitle)}</p></header>
{body}
<footer>{esc(footer)}</footer>
</main>
</body>
</html>
"""


STYLE = """
:root{--text:#1f2328;--muted:#57606a;--line:#d0d7de;--accent:#0072B2;--bg-soft:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;color:var(--text);background:#fff;
 font:15px/1.5 "DejaVu Sans","Segoe UI",Helvetica,Arial,sans-serif}
nav.toc{position:fixed;top:0;left:0;bottom:0;width:250px;overflow-y:auto;padding:16px 14px;
 background:var(--bg-soft);border-right:1px solid var(--line);font-size:13px}
nav.toc ol{list-style:none;padding-left:0;margin:0}
nav.toc ol ol{padding-left:14px;margin:2px 0 6px}
nav.toc a{color:var(--text);text-decoration:none;display:block;padding:1px 0}
nav.toc a:hover{color:var(--accent)}
.toc-title{font-weight:bold;margin:0 0 8px;text-transform:uppercase;letter-spacing:.05em;
 color:var(--muted)}
main{margin-left:250px;padding:20px 40px 60px;max-width:1160px}
header h1{margin:0 0 4px;font-size:28px}
.subtitle{color:var(--muted);margin:0 0 16px}
h2{font-size:22px;border-bottom:2px solid var(--line);padding-bottom:4px;margin-top:40px}
h3{font-size:17px;margin:26px 0 8px}
h4{font-size:15px;margin:16px 0 6px}
section.main{scroll-margin-top:10px}
figure{margin:12px 0 20px}
figure img{display:block;width:auto;max-width:100%;height:auto;border:1px solid #eee}
figure.full{max-width:900px}
figure.half{max-width:520px}
figure.small{margin:0}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
.grid{display:grid;gap:16px;margin:12px 0 20px;max-width:900px}
.grid.cols2{grid-template-columns:repeat(2,minmax(0,1fr))}
.grid.cols3{grid-template-columns:repeat(3,minmax(0,1fr))}
figure.table{margin:14px 0 22px}
figure.table figcaption{margin:0 0 6px;max-width:900px}
figcaption .source{display:block;font-size:12px}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px}
th,td{border-top:1px solid var(--line);padding:3px 10px;text-align:left;vertical-align:top}
thead th{border-top:none;border-bottom:2px solid var(--line);background:var(--bg-soft)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.na,th.na{color:#8c959f}
code{font-size:12px;background:var(--bg-soft);padding:0 3px;border-radius:3px}
.notice{border-left:4px solid #8c959f;background:var(--bg-soft);padding:8px 12px;max-width:900px}
.notice.warning{border-color:#d4a72c;background:#fff8c5}
.notice.error{border-color:#cf222e;background:#ffebe9}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px;
 margin:12px 0}
.card{border:1px solid var(--line);border-top:6px solid var(--subtype,#0072B2);border-radius:6px;
 padding:10px 16px}
.card h3{margin:4px 0 6px;color:var(--subtype,#0072B2)}
.card dl{margin:0}
.card dt{font-weight:bold;font-size:12px;text-transform:uppercase;letter-spacing:.04em;
 color:var(--muted);margin-top:8px}
.card dd{margin:2px 0 0}
.card dd p{margin:0 0 4px}
details{margin:8px 0}
summary{cursor:pointer;color:var(--accent)}
pre.config{font-size:12px;background:var(--bg-soft);padding:10px;overflow-x:auto;max-height:480px}
footer{margin-top:50px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);
 padding-top:8px}
@media print{nav.toc{display:none}main{margin-left:0}}
@media (max-width:900px){nav.toc{position:static;width:auto;border-right:none}
 main{margin-left:0;padding:16px}.grid.cols2,.grid.cols3{grid-template-columns:1fr}}
"""
