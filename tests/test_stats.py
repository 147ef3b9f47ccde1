"""The package's statistics agree with scipy.stats called directly on the same numbers."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from transfer_lab import stats
from transfer_lab.validate import InputError

SEEDS = [0.727, 0.760, 0.723]  # three seeds' accuracies: 0.737 ± 0.020 (n − 1)


def test_t_interval_is_scipys_student_t():
    mean, sem = np.mean(SEEDS), scipy_stats.sem(SEEDS)
    expected = scipy_stats.t.interval(0.95, 2, loc=mean, scale=sem)
    assert stats.t_interval(SEEDS) == pytest.approx(expected, abs=1e-12)
    assert stats.t_interval(SEEDS) == pytest.approx((0.68622, 0.78711), abs=1e-5)
    ninety = scipy_stats.t.interval(0.90, 2, loc=mean, scale=sem)
    assert stats.t_interval(SEEDS, confidence=0.90) == pytest.approx(ninety, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_interval_width_is_the_formula_and_shrinks_with_n(n):
    values = np.random.default_rng(n).normal(0.7, 0.05, size=n)
    low, high = stats.t_interval(values)
    half = scipy_stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
    assert high - low == pytest.approx(2 * half, rel=1e-12)
    # the same spread with more seeds: the width falls as t(n − 1) / √n
    widths = [np.subtract(*stats.t_interval(np.tile([0.6, 0.8], k))[::-1]) for k in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False)), widths


def test_undefined_is_none_not_nan():
    assert stats.t_interval([0.7]) == (None, None)
    assert stats.t_interval([]) == (None, None)
    assert stats.summarize([0.7]) == {"mean": 0.7, "std": None, "ci95": [None, None], "n": 1}
    assert stats.sample_std([0.7]) is None
    assert stats.paired_difference([0.9], [0.5])["ci95"] == [None, None]
    assert stats.t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)  # no spread: a point


def test_summarize_uses_the_sample_std_and_cuts_to_bounds():
    cell = stats.summarize(SEEDS)
    assert cell["std"] == pytest.approx(np.std(SEEDS, ddof=1), abs=1e-15)
    assert f"{cell['mean']:.3f} ± {cell['std']:.3f}" == "0.737 ± 0.020"
    assert cell["n"] == 3 and cell["ci95"] == list(stats.t_interval(SEEDS))
    low, high = stats.summarize([1.0, 0.95, 1.0], bounds=(0, 1))["ci95"]
    assert high == 1.0 and stats.t_interval([1.0, 0.95, 1.0])[1] > 1.0
    assert low == pytest.approx(stats.t_interval([1.0, 0.95, 1.0])[0])


def test_paired_difference_is_scipys_paired_t():
    a, b = [0.9, 0.8, 0.7, 0.85], [0.5, 0.6, 0.7, 0.55]
    diff = stats.paired_difference(a, b)
    expected = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert diff["mean"] == pytest.approx(0.225) and diff["n"] == 4
    assert diff["ci95"] == pytest.approx([expected.low, expected.high], abs=1e-12)
    with pytest.raises(InputError, match="equal-length"):
        stats.paired_difference([1, 0], [1, 0, 1])


def test_paired_bootstrap_is_scipys_with_the_same_seed():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 60), rng.integers(0, 2, 60)  # per-item 0/1 correctness
    result = stats.paired_bootstrap(a, b, n_resamples=2000, seed=7)
    expected = scipy_stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis),
                                     paired=True, n_resamples=2000, method="percentile",
                                     rng=np.random.default_rng(7)).confidence_interval
    assert result["mean"] == pytest.approx(np.mean(a - b)) and result["n"] == 60
    assert result["ci95"] == pytest.approx([expected.low, expected.high], abs=1e-12)
    assert result == stats.paired_bootstrap(a, b, n_resamples=2000, seed=7)  # seeded
    low, high = result["ci95"]
    assert low < result["mean"] < high and high - low < 0.5
    median = stats.paired_bootstrap(a, b, statistic=np.median, seed=7)
    assert median["mean"] == np.median(a - b)


def test_paired_bootstrap_edge_cases():
    same = [1, 0, 1, 1]
    assert stats.paired_bootstrap(same, same) == {"mean": 0.0, "ci95": [0.0, 0.0], "n": 4}
    assert stats.paired_bootstrap([1], [0]) == {"mean": 1.0, "ci95": [None, None], "n": 1}
    with pytest.raises(InputError, match="equal-length"):
        stats.paired_bootstrap([1, 0], [1, 0, 1])
