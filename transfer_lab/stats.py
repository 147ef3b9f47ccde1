"""Statistics over seeds and items: the spread, t-intervals and paired differences (appendix).

Every interval and standard deviation the package prints, plots or saves comes from here, so a
table, a figure and results.json show the same numbers. Where a value is undefined (one seed
has no spread) it is None, never NaN: it saves as JSON `null`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from transfer_lab.validate import InputError

Interval = tuple[float | None, float | None]


def _values(values: Sequence[float], name: str = "values") -> np.ndarray:
    """Return `values` as a 1-d float array, or raise InputError naming the fix."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise InputError(f"{name} must be a flat list of numbers (one per seed or item), "
                         f"got shape {array.shape}")
    return array


def _pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Return `a` and `b` as float arrays of one length, or raise InputError naming the fix."""
    a, b = _values(a, "a"), _values(b, "b")
    if a.shape != b.shape:
        raise InputError(f"paired values need two equal-length lists (the same seeds or items, "
                         f"in the same order), got {len(a)} and {len(b)}")
    return a, b


def _clip(interval: Interval, bounds: tuple[float, float] | None) -> Interval:
    """Return `interval` cut to `bounds` (the range the statistic can take), if given."""
    low, high = interval
    if bounds is None or low is None or high is None:
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def sample_std(values, axis: int | None = None):
    """Return the sample standard deviation (n − 1) along `axis`; None under two values.

    The one definition of spread in the package: tables, figures and results.json use it.
    """
    values = np.asarray(values, dtype=float)
    n = values.size if axis is None else values.shape[axis]
    if n < 2:
        return None
    std = values.std(axis=axis, ddof=1)
    return float(std) if np.ndim(std) == 0 else std


def t_interval(values: Sequence[float], confidence: float = 0.95,
               bounds: tuple[float, float] | None = None) -> Interval:
    """Return the Student-t confidence interval of the mean of `values`; (None, None) under two.

    With zero spread the interval is (mean, mean). With `bounds`, the range the values can take
    (accuracy: 0 to 1), the ends are cut to it: with few seeds near a bound the t-interval reaches
    past it, where the mean cannot be.
    """
    values = _values(values)
    if len(values) < 2:
        return None, None
    mean, sem = float(values.mean()), float(stats.sem(values))
    if sem == 0:
        return _clip((mean, mean), bounds)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return _clip((float(low), float(high)), bounds)


def summarize(values: Sequence[float], bounds: tuple[float, float] | None = None) -> dict:
    """Return {"mean", "std", "ci95", "n"} of `values` (std with n − 1; None under two values)."""
    values = _values(values)
    mean = float(values.mean()) if len(values) else None
    return {"mean": mean, "std": sample_std(values),
            "ci95": list(t_interval(values, bounds=bounds)), "n": len(values)}


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Return {"mean", "ci95", "n"} of a − b paired by position (t-interval of the differences)."""
    a, b = _pairs(a, b)
    differences = a - b
    mean = float(differences.mean()) if len(differences) else None
    return {"mean": mean, "ci95": list(t_interval(differences, confidence)),
            "n": len(differences)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *,
                     statistic: Callable = np.mean, n_resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """Return {"mean", "ci95", "n"}: `statistic` of a − b and its percentile bootstrap interval.

    Pairs (the same item scored by two models, say) are resampled together with
    `scipy.stats.bootstrap(..., paired=True, method="percentile")`, seeded; "mean" holds
    `statistic` of the differences (their mean by default). With zero spread the interval is
    (mean, mean); under two pairs it is (None, None).
    """
    a, b = _pairs(a, b)
    differences = a - b
    if len(differences) < 2:
        mean = float(statistic(differences)) if len(differences) else None
        return {"mean": mean, "ci95": [None, None], "n": len(differences)}
    mean = float(statistic(differences))
    if np.all(differences == differences[0]):
        return {"mean": mean, "ci95": [mean, mean], "n": len(differences)}
    result = stats.bootstrap((a, b), lambda x, y, axis=-1: statistic(x - y, axis=axis),
                             paired=True, vectorized=True, n_resamples=n_resamples,
                             confidence_level=confidence, method="percentile",
                             rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return {"mean": mean, "ci95": [float(interval.low), float(interval.high)],
            "n": len(differences)}
