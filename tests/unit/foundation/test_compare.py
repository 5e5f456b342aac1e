"""rdls.compare: subtypes in natural order, one value per subject, and the edge cases a small
cohort meets (one subtype present, no spread)."""

import numpy as np
import pandas as pd
import pytest

from rdls.compare import compare_by_subtype, natural_key
from rdls.errors import InputError


def test_subtypes_sort_naturally():
    assert sorted(["RDLS10", "RDLS2", "RDLS1"], key=natural_key) == ["RDLS1", "RDLS2", "RDLS10"]


def test_one_subtype_gets_its_median_and_no_test():
    table = pd.DataFrame({"subject_id": ["a", "b"], "subtype": "RDLS1", "x": [1.0, 3.0]})
    result = compare_by_subtype(table, columns=["x"])
    assert result["comparison"].tolist() == ["all"]
    assert result["median_RDLS1"].item() == 2.0 and np.isnan(result["p_value"].item())


def test_no_spread_gives_no_statistic_but_pairs_still_compare():
    table = pd.DataFrame({"subject_id": list("abcd"), "subtype": ["RDLS1"] * 2 + ["RDLS2"] * 2,
                          "x": 1.0})  # fmt: skip
    result = compare_by_subtype(table, columns=["x"])
    assert np.isnan(result.loc[result["comparison"] == "all", "statistic"].item())
    assert result["comparison"].tolist() == ["all", "RDLS1 vs RDLS2"]


def test_missing_column_names_the_table():
    with pytest.raises(InputError, match=r"bulk scores lacks column\(s\) 'x'"):
        compare_by_subtype(pd.DataFrame({"subject_id": [], "subtype": []}), columns=["x"],
                           what="bulk scores")  # fmt: skip
