"""`transfer-lab run` end to end: results, curves, and never overwriting a folder."""

import json

import pytest
from _helpers import cli

import transfer_lab as tl
from transfer_lab.cli import main


@pytest.mark.slow
def test_run_writes_results_and_never_overwrites(tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--seeds", "2", "--epochs", "10", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "transfer − scratch" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    for key in ("source", "target", "model", "labels", "seeds", "arms", "test_examples"):
        assert key in results
    scratch = [r["accuracy"] for r in results["arms"]["scratch"]]
    transfer = [r["accuracy"] for r in results["arms"]["transfer"]]
    assert [r["seed"] for r in results["arms"]["scratch"]] == [0, 1]
    assert min(transfer) - max(scratch) > 0.2, proc.stdout
    assert (out / "curves.png").stat().st_size > 10_000
    # a second run with the same --out writes beside it, not over it
    proc2 = cli("run", "--seeds", "1", "--labels", "16", "--epochs", "2", "--out", str(out))
    assert proc2.returncode == 0, proc2.stderr
    assert json.loads((out / "results.json").read_text()) == results
    assert (tmp_path / "run-2" / "results.json").exists()


@pytest.mark.slow
def test_run_on_a_ner_target_takes_the_family_defaults(tmp_path, capsys):
    out = tmp_path / "ner"
    assert main(["run", "--target", "ner_reviews", "--seeds", "1", "--labels", "8",
                 "--epochs", "1", "--out", str(out)]) == 0, capsys.readouterr().err
    assert "entity F1" in capsys.readouterr().out  # the family's table
    results = json.loads((out / "results.json").read_text())
    family = tl.get_family("token_classification")
    assert (results["family"], results["metric"]) == (family.name, "f1")
    assert (results["source"], results["init"], results["labels"]) == ("ner_news", "supervised", 8)
    assert results["test_examples"] == tl.profile().test_examples  # the real test size
    assert set(results["arms"]) == {"scratch", "transfer"}
    for arm, runs in results["arms"].items():
        assert [r["seed"] for r in runs] == [0], arm
        assert all({"f1", "precision", "recall", "score"} <= set(r) for r in runs), arm
        assert all(r["score"] == r["f1"] and 0.0 <= r["f1"] <= 1.0 for r in runs), arm
    assert results["config"]["epochs"] == 1 and results["config"]["max_steps"] is None
    assert (out / "curves.png").stat().st_size > 10_000
    assert not (out / "checkpoints").exists()
