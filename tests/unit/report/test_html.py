"""rdls.report._html: numbers rounded as a paper prints them, tables escaped, PNGs embedded."""

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rdls.report._html import (
    MAX_IMAGE_PX,
    NA,
    ci_text,
    figure,
    fmt_fixed,
    fmt_num,
    fmt_p,
    fmt_ratio,
    is_p_column,
    png_data_uri,
    table,
)
from tests.unit.report.fixtures import png


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0123, "0.012"),
        (0.049, "0.049"),
        (0.5, "0.5"),
        (1.0, "1"),
        (8.9e-10, "8.9 \u00d7 10\u207b\u00b9\u2070"),
        (0.00047, "4.7 \u00d7 10\u207b\u2074"),
        (np.nan, NA),
        (None, NA),
    ],
)
def test_p_values(value, text):
    assert fmt_p(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1934.37, "1934"),
        (12345.6, "12,346"),
        (17.583, "17.6"),
        (0.0696, "0.0696"),
        (3.0, "3"),
        (150, "150"),
        (-0.0482, "-0.0482"),
        (3.1e-7, "3.10 \u00d7 10\u207b\u2077"),
        (float("inf"), "\u221e"),
        (np.nan, NA),
        (True, "yes"),
    ],
)
def test_numbers(value, text):
    assert fmt_num(value) == text


def test_ratios_and_intervals():
    assert fmt_ratio(0.494) == "0.49"
    assert fmt_ratio(0.0216) == "0.022"
    assert fmt_ratio(1.04) == "1.04"
    assert fmt_ratio(15.33) == "15.3"
    assert ci_text(0.494, 0.234, 1.04, formatter=fmt_ratio) == "0.49 (0.23\u20131.04)"
    # a negative bound reads "to", not a dash that looks like a minus
    assert ci_text(0.051, -0.005, 0.105, formatter=fmt_fixed) == ("0.051 (\u22120.005 to 0.105)")
    assert ci_text(np.nan, 0.1, 0.2) == NA


def test_p_columns_are_recognised_by_name():
    assert all(map(is_p_column, ["p", "p_value", "pvalue", "padj", "p_adjusted", "fdr"]))
    assert not any(map(is_p_column, ["pac", "group", "penalty", "cdf_area"]))


def test_table_escapes_rounds_and_truncates():
    frame = pd.DataFrame(
        {
            "name": ["<script>alert(1)</script>", "b", "c"],
            "p_value": [1e-6, 0.2, np.nan],
            "n": [10, 20, 30],
        }
    )
    html = table(frame, caption="Caption & method.", max_rows=2, source="results/x.tsv")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Caption &amp; method. First 2 of 3 rows." in html
    assert "<code>results/x.tsv</code>" in html
    assert '<td class="num">1.0 \u00d7 10\u207b\u2076</td>' in html
    assert '<td class="num">20</td>' in html
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 2 and ">c<" not in body


def test_figure_embeds_png_and_scales_wide_ones(tmp_path):
    small = png(tmp_path / "small.png", size=(40, 20))
    html = figure(small, "A small figure.")
    assert (
        'src="data:image/png;base64,' in html and "<figcaption>A small figure.</figcaption>" in html
    )
    wide = png(tmp_path / "wide.png", size=(MAX_IMAGE_PX * 2, 100))
    data = base64.b64decode(png_data_uri(wide).split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (MAX_IMAGE_PX, 50)


def test_a_missing_or_broken_figure_is_a_notice_not_a_broken_image(tmp_path):
    html = figure(tmp_path / "absent.png", "Kaplan-Meier. With details.")
    assert "<img" not in html
    assert "Figure not available: Kaplan-Meier" in html
    (tmp_path / "fake.png").write_text("not a png")
    html = figure(tmp_path / "fake.png", "Fake.")
    assert "<img" not in html and "is not a PNG file" in html
