"""Comparison statistics: paired differences, the verdict prose may state, and strict JSON."""

import json

import matplotlib
import numpy as np
import pytest
from scipy import stats as scipy_stats

from transfer_lab.results import Comparison, ci95

matplotlib.use("Agg")


def comparison(transfer, baseline):
    def runs(values):
        return [{"seed": s, "score": v, "accuracy": v, "macro_f1": v}
                for s, v in enumerate(values)]

    arms = {"transfer": runs(transfer), "bow": runs(baseline)}
    return Comparison("product_sentiment", "film_sentiment", "tiny", "supervised", 64,
                      len(transfer), arms)


def test_differences_pair_by_seed():
    transfer, bow = [0.9, 0.8, 0.7], [0.5, 0.6, 0.7]
    result = comparison(transfer, bow)
    result.arms["bow"].reverse()  # stored out of order: pairs are matched by seed, not position
    diff = result.differences()["transfer-bow"]
    expected = scipy_stats.ttest_rel(transfer, bow).confidence_interval(0.95)
    assert diff["mean"] == pytest.approx(0.2) and diff["seeds"] == 3
    assert diff["ci95"] == pytest.approx([expected.low, expected.high], abs=1e-12)
    assert diff["ci95"] == pytest.approx([-0.2968, 0.6968], abs=1e-4)  # 0.2 ± t(2) · 0.2/√3


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
    assert t_hi == 1.0 and b_lo == 0.0
    assert t_lo == pytest.approx(ci95([1.0, 0.95, 1.0])[0]) and 0.8 < t_lo < 0.983
    assert b_hi == pytest.approx(ci95([0.02, 0.0, 0.05])[1]) and 0.023 < b_hi < 0.2
    assert ci95([1.0, 0.95, 1.0])[1] > 1.0  # the bare t-interval reaches past the bound
    assert "1.000]" in result.table() and "[0.000," in result.table()


SEEDS = [0.727, 0.760, 0.723]  # 0.737 ± 0.020 with the sample std (n − 1); 0.017 with n


def test_table_plot_and_json_show_the_same_std():
    result = comparison(SEEDS, [0.5, 0.52, 0.54])
    std = json.loads(json.dumps(result.to_dict()))["summary"]["transfer"]["score"]["std"]
    assert std == pytest.approx(np.std(SEEDS, ddof=1)) and result.mean_std("transfer")[1] == std
    assert f"0.737 ± {std:.3f}" == "0.737 ± 0.020"
    assert "0.737 ± 0.020" in result.table().splitlines()[2]
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    fig, ax = plt.subplots()
    result.plot(ax=ax)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]  # arm by arm, metric by metric
    (bottom, top), *_ = bars[0].errorbar.lines[2][0].get_segments()  # transfer, accuracy
    assert (top[1] - bottom[1]) / 2 == pytest.approx(std)
    plt.close(fig)


def hand_built(seeds):
    """Return a comparison of two arms built by hand: metrics, a curve and losses per seed."""
    def run(seed, accuracy, trained):
        row = {"seed": seed, "accuracy": accuracy, "macro_f1": accuracy - 0.01,
               "score": accuracy, "seconds": 1.5}
        if trained:
            row |= {"curve": [{"epoch": 1, "accuracy": accuracy - 0.1},
                              {"epoch": 2, "accuracy": accuracy}], "train_loss": [0.7, 0.5]}
        return row

    arms = {"bow": [run(s, 0.6 + s / 100, False) for s in range(seeds)],
            "transfer": [run(s, v, True) for s, v in zip(range(seeds), SEEDS, strict=False)]}
    return Comparison("product_sentiment", "film_sentiment", "tiny", "supervised", 64, seeds,
                      arms, theta_S="theta", config={"epochs": 2}, seconds=9.0,
                      test_examples=200)


@pytest.mark.parametrize("seeds", [1, 3])
def test_comparison_json_round_trip(seeds, tmp_path):
    result = hand_built(seeds)
    back = Comparison.from_json(result.to_json(tmp_path / "results.json"))
    assert back == result and back.to_dict() == result.to_dict()
    assert back.table() == result.table()
    assert back.difference(baseline="bow") == pytest.approx(result.difference(baseline="bow"))


def strict(text: str):
    """Parse JSON as a strict parser does: NaN and Infinity are errors."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_results_json_is_strict_with_one_seed(tmp_path):
    result = hand_built(1)
    data = strict(result.to_json(tmp_path / "results.json").read_text())
    cell = data["summary"]["transfer"]["score"]
    assert cell == {"mean": 0.727, "std": None, "ci95": [None, None]}
    assert data["differences"]["transfer-bow"]["ci95"] == [None, None]
    assert "(one seed: no interval)" in result.table()
    with pytest.raises(ValueError, match="NaN is not JSON"):  # the check itself can fail
        strict('{"std": NaN}')


def test_a_nan_metric_fails_loudly_instead_of_writing_bad_json(tmp_path):
    result = hand_built(3)
    result.arms["bow"][0]["macro_f1"] = float("nan")
    with pytest.raises(ValueError, match="JSON compliant"):
        result.to_json(tmp_path / "results.json")
    assert not (tmp_path / "results.json").exists()


def test_the_comparison_plot_keeps_its_legend_off_the_data(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    rows = {arm: [{"seed": s, "score": b + s / 100, "accuracy": b + s / 100, "macro_f1": b,
                   "train_loss": [1.0, 0.5 - b / 2], "curve": [{"epoch": 1}]} for s in range(3)]
            for arm, b in (("scratch", 0.5), ("transfer", 0.9))}
    c = Comparison("product_sentiment", "film_sentiment", "tiny", "supervised", 64, 3, rows)
    fig = c.plot(tmp_path / "c.png")
    fig.canvas.draw()
    for ax in fig.axes:
        legend, data = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.y1 <= data.y0, (legend, data)  # below the axes, over no bar or curve
    assert (tmp_path / "c.png").stat().st_size > 0
