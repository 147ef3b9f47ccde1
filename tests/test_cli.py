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


def _reviews_csv(path, n: int = 60) -> None:
    """Write a CSV of short English reviews with string labels (one has a quoted line break)."""
    good = ["superb", "wonderful", "brilliant", "delightful", "moving", "excellent"]
    bad = ["dreadful", "boring", "awful", "tedious", "terrible", "clumsy"]
    things = ["film", "acting", "story", "score", "ending"]
    rows = ["review,sentiment"]
    for i in range(n):
        words, label = (good, "positive") if i % 2 == 0 else (bad, "negative")
        text = f"The {things[i % 5]} was {words[i % 6]}, truly\n{words[(i + 1) % 6]}."
        rows.append(f'"{text}",{label}')
    path.write_text("\n".join(rows) + "\n")


def test_own_csv_with_string_labels_run_save_predict(tmp_path):
    data, saved = tmp_path / "reviews.csv", tmp_path / "theta_T"
    _reviews_csv(data)
    proc = cli("run", "--target-file", str(data), "--text-column", "review", "--label-column",
               "sentiment", "--labels", "all", "--seeds", "1", "--epochs", "4",
               "--out", str(tmp_path / "run"), "--save", str(saved))
    assert proc.returncode == 0, proc.stderr
    assert "truncated" in proc.stdout and "transfer-lab predict" in proc.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["target"] == "reviews" and results["model"] == "minilm"
    assert results["labels"] == 48  # all training rows: a stratified fifth of 60 is held out
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    texts = ["The story was wonderful and moving.", "The acting was dreadful and boring."]
    proc = cli("predict", "--model", str(saved), *texts)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split("\t")[-1] for line in lines] == texts
    for line in lines:
        label, probs, _ = line.split("\t")
        p = dict(zip(probs.split()[::2], map(float, probs.split()[1::2]), strict=True))
        assert set(p) == {"negative", "positive"} and abs(sum(p.values()) - 1) < 1e-2
        assert label == max(p, key=p.get)
    from transfer_lab import predict

    api = predict(saved, texts)
    assert [r["label"] for r in api] == [line.split("\t")[0] for line in lines]
    assert [r["label"] for r in api] == ["positive", "negative"], api


@pytest.mark.parametrize("args, needle", [
    (["run", "--target-file", "missing.csv"], "does not exist"),
    (["run", "--target-file", "{csv}", "--text-column", "sentence"], "columns found: review"),
    (["run", "--target-file", "{csv}", "--model", "tiny"], "synthetic world"),
    (["run", "--target-eval-file", "{csv}"], "needs --target-file"),
    (["predict", "--model", "nowhere", "text"], "not a saved model"),
    (["predict", "--model", "{tmp}"], "no texts"),
])
def test_own_data_mistakes_are_one_line(tmp_path, args, needle):
    _reviews_csv(tmp_path / "reviews.csv", 10)
    args = [a.format(csv=tmp_path / "reviews.csv", tmp=tmp_path) for a in args]
    proc = cli(*args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
