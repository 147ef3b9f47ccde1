"""`transfer-lab run` end to end: results, curves, and never overwriting a folder."""

import json

from _helpers import cli


def test_run_writes_results_and_never_overwrites(tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--seeds", "2", "--epochs", "10", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "gain (transfer − scratch)" in proc.stdout
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
