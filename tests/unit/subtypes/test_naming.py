"""rdls.subtypes.naming: incidence rates and the risk-ordered names RDLS1, RDLS2, ..."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.subtypes.naming import incidence_rates, name_subtypes


def _cohort(rates_per_month: dict[int, float], n: dict[int, int], *, seed: int):
    """Exponential recurrence with the given monthly hazard per cluster, censored at 60 months."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n[c], c) for c in rates_per_month])
    hazard = np.concatenate([np.full(n[c], rates_per_month[c]) for c in rates_per_month])
    recurrence = rng.exponential(1 / hazard)
    time = np.minimum(recurrence, 60.0)
    event = (recurrence <= 60.0).astype(float)
    order = rng.permutation(labels.size)
    return labels[order], time[order], event[order]


def test_incidence_rates_by_hand():
    labels = np.array([0, 0, 0, 1, 1])
    time = np.array([12.0, 24.0, 36.0, 6.0, 18.0])
    event = np.array([1, 0, 1, 0, 0])

    rates = incidence_rates(labels, time, event)

    assert list(rates.columns) == [
        "cluster",
        "n",
        "n_followup",
        "events",
        "person_months",
        "rate_per_100_person_years",
    ]
    assert rates["cluster"].tolist() == [0, 1]
    assert rates["events"].tolist() == [2, 0]
    assert rates["person_months"].tolist() == [72.0, 24.0]
    # 2 events in 72 months = 6 years: 33.3 per 100 person-years
    assert rates["rate_per_100_person_years"].tolist() == pytest.approx([100 * 2 / 6, 0.0])


def test_three_clusters_rdls1_highest_rdls2_lowest_rdls3_between():
    # cluster ids deliberately not in risk order: 0 middle, 1 low, 2 high
    labels, time, event = _cohort({0: 0.02, 1: 0.004, 2: 0.06}, {0: 200, 1: 200, 2: 200}, seed=1)

    names = name_subtypes(labels, time, event)

    assert names == {2: "RDLS1", 1: "RDLS2", 0: "RDLS3"}
    assert all(isinstance(key, int) for key in names)


def test_two_clusters_rdls1_high_rdls2_low():
    labels, time, event = _cohort({5: 0.003, 7: 0.05}, {5: 100, 7: 100}, seed=2)

    assert name_subtypes(labels, time, event, prefix="S") == {7: "S1", 5: "S2"}


def test_more_clusters_fill_in_between_in_decreasing_rate():
    labels = np.repeat([0, 1, 2, 3, 4], 4)
    time = np.full(20, 10.0)
    events_per_cluster = {0: 2, 1: 4, 2: 0, 3: 3, 4: 1}  # rates: 1 > 3 > 0 > 4 > 2
    event = np.concatenate([[1] * e + [0] * (4 - e) for e in events_per_cluster.values()])

    names = name_subtypes(labels, time, event)

    assert names == {1: "RDLS1", 2: "RDLS2", 3: "RDLS3", 0: "RDLS4", 4: "RDLS5"}


def test_ties_go_to_the_larger_cluster_then_the_smaller_label():
    # clusters 0 and 1 tie at the top rate; 1 is larger, so it is RDLS1.
    # clusters 2 and 3 tie with each other (same size): the smaller label ranks first.
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    time = np.full(10, 12.0)
    event = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 0])

    names = name_subtypes(labels, time, event)

    assert names == {1: "RDLS1", 3: "RDLS2", 0: "RDLS3", 2: "RDLS4"}


def test_names_do_not_depend_on_subject_order():
    labels, time, event = _cohort({0: 0.02, 1: 0.004, 2: 0.06}, {0: 50, 1: 80, 2: 40}, seed=3)
    order = np.random.default_rng(4).permutation(labels.size)

    assert name_subtypes(labels, time, event) == name_subtypes(
        labels[order], time[order], event[order]
    )


def test_subjects_without_follow_up_still_get_names_and_are_left_out_of_rates():
    labels = np.array([0, 0, 1, 1, 2])
    time = np.array([10.0, np.nan, 10.0, 10.0, np.nan])
    event = np.array([1, np.nan, 0, 0, np.nan])
    # cluster 2 has no follow-up at all: its rate would be undefined
    with pytest.raises(InputError, match=r"cluster\(s\) 2 have no subject with"):
        name_subtypes(labels, time, event)

    labels[4] = 1
    rates = incidence_rates(labels, time, event).set_index("cluster")
    assert rates.loc[0, "n"] == 2
    assert rates.loc[0, "n_followup"] == 1
    assert rates.loc[1, "n"] == 3
    assert name_subtypes(labels, time, event) == {0: "RDLS1", 1: "RDLS2"}


def test_series_are_aligned_on_subject_ids():
    index = pd.Index(["a", "b", "c", "d"], name="subject_id")
    labels = pd.Series([0, 0, 1, 1], index=index)
    time = pd.Series([10.0, 10.0, 10.0, 10.0], index=index)
    event = pd.Series([1, 1, 0, 0], index=index).iloc[::-1]  # other order: aligned by id

    assert name_subtypes(labels, time, event) == {0: "RDLS1", 1: "RDLS2"}


def test_no_events_is_an_error():
    with pytest.raises(InputError, match="no recurrence among the 4 training subjects"):
        name_subtypes(np.array([0, 0, 1, 1]), np.full(4, 10.0), np.zeros(4))


def test_no_follow_up_is_an_error():
    with pytest.raises(InputError, match="no training subject has recurrence-free survival"):
        name_subtypes(np.array([0, 1]), np.full(2, np.nan), np.full(2, np.nan))


@pytest.mark.parametrize(
    ("time", "event", "message"),
    [
        ([10.0, 10.0, 10.0], [1, 0, 1], r"3 time value\(s\) for 4 labels"),
        ([10.0, 10.0, 10.0, 10.0], [1, 0, 2, 0], r"event must be 0 or 1; subject\(s\) '2'"),
        ([10.0, -1.0, 10.0, 10.0], [1, 0, 1, 0], r"negative follow-up time for subject\(s\) '1'"),
    ],
)
def test_bad_follow_up_is_an_error(time, event, message):
    with pytest.raises(InputError, match=message):
        name_subtypes(np.array([0, 0, 1, 1]), np.asarray(time), np.asarray(event))


def test_missing_label_is_an_error():
    labels = pd.Series([0, np.nan, 1], index=["a", "b", "c"])
    with pytest.raises(InputError, match=r"subject\(s\) 'b' have no cluster label"):
        name_subtypes(labels, pd.Series(10.0, index=labels.index), pd.Series(1, index=labels.index))


def test_series_missing_a_subject_is_an_error():
    labels = pd.Series([0, 1, 1], index=["a", "b", "c"])
    time = pd.Series([10.0, 10.0], index=["a", "b"])
    with pytest.raises(InputError, match=r"time is missing for 1 subject\(s\).*'c'"):
        name_subtypes(labels, time, pd.Series(1, index=labels.index))
