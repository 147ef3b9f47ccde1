"""Smoke test of the LLM benchmark on a tiny random Llama: each arm runs, trains alike, and the
summary's ratios are finite."""

import math

import pytest

from benchmarks import llm as bench


@pytest.fixture(scope="module")
def timed():
    """Return one round of every arm on a tiny Llama with SmolLM2's tokenizer, 3 steps of 4."""
    return bench.timing(steps=3, batch=4, rounds=1, model="tiny")


def test_every_arm_trains_the_same_weights_on_the_same_batches(timed):
    runs = {arm: r[0] for arm, r in timed["runs"].items()}
    assert set(runs) == set(bench.ARMS)
    first = [r["first_loss"] for r in runs.values()]
    last = [r["last_loss"] for r in runs.values()]
    # the same weights and batches, the same optimizer: the same losses, to float32 rounding
    assert max(first) - min(first) < 1e-5, runs
    assert max(last) - min(last) < 1e-4, runs
    for r in runs.values():
        assert 0 < r["steady_seconds"] < r["seconds"] and r["steady_cpu_seconds"] > 0
    # packed: the shared start is computed once a batch, so fewer tokens than the examples hold
    assert 0 < timed["computed_tokens"] < timed["tokens"] and timed["trainable"] > 0


def test_summary_holds_finite_ratios_and_the_roof(timed):
    peaks = dict.fromkeys(("load", *bench.ARMS), 100.0)
    loads = {"from_gguf_seconds": 10.0, "cached_seconds": 1.0}
    out = bench.summarize(timed, loads, peaks)
    ratios = [out["fit_over_trainer_examples_per_s"], out["fit_over_bare_time"],
              out["fit_over_trainer_cpu_time"], out["fit_over_bare_cpu_time"],
              *(x for per_round in out["per_round"].values() for x in per_round)]
    assert all(math.isfinite(x) and x > 0 for x in ratios), ratios
    for arm in bench.ARMS:
        m = out["median"][arm]
        assert {"examples_per_s", "tokens_per_s", "fraction_of_matmul", "cpu_over_wall",
                "peak_rss_mb"} <= set(m)
        assert math.isfinite(m["tokens_per_s"]) and 0 < m["fraction_of_matmul"] < 10
    assert out["load"] == loads and out["first_loss_spread"] < 1e-5
    assert set(out["ops"]) == set(bench.ARMS)
    for arm, ops in out["ops"].items():  # every arm multiplies the same matrices
        assert ops["matmul_calls"] == out["ops"]["bare"]["matmul_calls"] > 0, out["ops"]
        assert ops["aten_calls"] >= ops["matmul_calls"] and ops["self_cpu_seconds"] > 0, arm


def test_one_timed_step_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        bench.train_arm("fit", None, None, None, 1, 4)
