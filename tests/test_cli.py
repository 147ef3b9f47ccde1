"""The transfer-lab command: listings, one-line errors with exit code 2, and a real run."""

import json
import subprocess
import sys

import pytest

from transfer_lab.cli import main


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run the command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "transfer_lab.cli", *args],
                          capture_output=True, text=True, timeout=600)


def test_tasks_and_models_are_listed(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "film_sentiment" in out and "product_sentiment" in out and "hub" in out
    assert main(["models"]) == 0
    assert "minilm" in capsys.readouterr().out


@pytest.mark.parametrize("args, needle", [
    (["run", "--target", "nope"], "invalid choice: 'nope'"),
    (["run", "--model", "gpt5"], "invalid choice: 'gpt5'"),
    (["run", "--labels", "0"], "must be at least 1"),
    (["run", "--labels", "lots"], "not a whole number"),
    (["run", "--labels", "2000000"], "use at most"),
    (["run", "--target", "sst2"], "quick profile"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(args, needle):
    proc = cli(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_run_writes_results_and_never_overwrites(tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "gain (transfer − scratch)" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    for key in ("source", "target", "model", "labels", "seeds", "arms"):
        assert key in results
    scratch = [r["accuracy"] for r in results["arms"]["scratch"]]
    transfer = [r["accuracy"] for r in results["arms"]["transfer"]]
    assert [r["seed"] for r in results["arms"]["scratch"]] == [0, 1]
    assert min(transfer) - max(scratch) > 0.2, proc.stdout
    assert (out / "curves.png").stat().st_size > 10_000
    # a second run with the same --out writes beside it, not over it
    proc2 = cli("run", "--seeds", "1", "--labels", "16", "--out", str(out))
    assert proc2.returncode == 0, proc2.stderr
    assert json.loads((out / "results.json").read_text()) == results
    assert (tmp_path / "run-2" / "results.json").exists()
