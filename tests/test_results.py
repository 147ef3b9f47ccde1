"""Comparison statistics: paired differences and the verdict prose may state."""

import pytest

from transfer_lab.results import Comparison, ci95


def comparison(transfer, baseline):
    def runs(values):
        return [{"seed": s, "score": v, "accuracy": v, "macro_f1": v}
                for s, v in enumerate(values)]

    arms = {"transfer": runs(transfer), "bow": runs(baseline)}
    return Comparison("product_sentiment", "film_sentiment", "tiny", "supervised", 64,
                      len(transfer), arms)


def test_differences_pair_by_seed():
    diff = comparison([0.9, 0.8, 0.7], [0.5, 0.6, 0.7]).differences()["transfer-bow"]
    assert diff["mean"] == pytest.approx(0.2) and diff["seeds"] == 3
    lo, hi = diff["ci95"]
    assert lo < 0.2 < hi


@pytest.mark.parametrize(("transfer", "baseline", "verdict"), [
    ([0.90, 0.91, 0.92, 0.93], [0.50, 0.52, 0.51, 0.50], "better than"),
    ([0.50, 0.52, 0.51, 0.50], [0.90, 0.91, 0.92, 0.93], "worse than"),
    ([0.90, 0.50, 0.70, 0.60], [0.60, 0.80, 0.55, 0.75], "indistinguishable from"),
    ([0.90], [0.50], "indistinguishable from"),  # one seed: no interval, no claim
])
def test_verdict_follows_the_paired_interval(transfer, baseline, verdict):
    result = comparison(transfer, baseline)
    assert result.verdict("bow") == verdict
    if len(transfer) > 1:
        words = {"better than": "transfer better", "worse than": "transfer worse"}
        assert words.get(verdict, "indistinguishable") in result.table()


def test_intervals_stay_inside_the_metrics_range():
    result = comparison([1.0, 0.95, 1.0], [0.02, 0.0, 0.05])  # near both ends of accuracy
    (t_lo, t_hi), (b_lo, b_hi) = (result.summary()[arm]["score"]["ci95"]
                                  for arm in ("transfer", "bow"))
    assert t_hi == 1.0 and 0.8 < t_lo < 0.983 and b_lo == 0.0 and 0.023 < b_hi < 0.2
    assert ci95([1.0, 0.95, 1.0])[1] > 1.0  # the bare t-interval reaches past the bound
    assert "1.000]" in result.table() and "[0.000," in result.table()
