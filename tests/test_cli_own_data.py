"""Your own data through the command line: a CSV with string labels, run → save → predict."""

import json

import pytest
from _helpers import cli, main_exit


def _reviews_csv(path, n: int = 60) -> None:
    """Write a CSV of short English reviews with string labels (with quoted line breaks)."""
    good = ["superb", "wonderful", "brilliant", "delightful", "moving", "excellent"]
    bad = ["dreadful", "boring", "awful", "tedious", "terrible", "clumsy"]
    things = ["film", "acting", "story", "score", "ending"]
    rows = ["review,sentiment"]
    for i in range(n):
        words, label = (good, "positive") if i % 2 == 0 else (bad, "negative")
        text = f"The {things[i % 5]} was {words[i % 6]}, truly\n{words[(i + 1) % 6]}."
        rows.append(f'"{text}",{label}')
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.slow
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
    assert results["labels"] == 48 and results["test_examples"] == 12  # a stratified fifth
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


def test_predict_reads_texts_from_a_file(tmp_path, capsys):
    (tmp_path / "new.txt").write_text("first text\n\nsecond text\n")
    from transfer_lab.cli import _texts, parser

    args = parser().parse_args(["predict", "--model", "m", "given", "--file",
                                str(tmp_path / "new.txt")])
    assert _texts(args) == ["given", "first text", "second text"]
    _reviews_csv(tmp_path / "new.csv", 4)
    args = parser().parse_args(["predict", "--model", "m", "--file", str(tmp_path / "new.csv"),
                                "--text-column", "review"])
    assert len(_texts(args)) == 4 and "truly\n" in _texts(args)[0]


@pytest.mark.parametrize("args, needle", [
    (["run", "--target-file", "missing.csv"], "does not exist"),
    (["run", "--target-file", "{csv}", "--text-column", "sentence"], "columns found: review"),
    (["run", "--target-file", "{csv}", "--model", "tiny"], "synthetic world"),
    (["run", "--target-eval-file", "{csv}"], "needs --target-file"),
    (["predict", "--model", "nowhere", "text"], "not a saved model"),
    (["predict", "--model", "{tmp}"], "no texts"),
    (["predict", "--model", "m", "--file", "{csv}", "--text-column", "x"], "columns found"),
])
def test_own_data_mistakes_are_one_line(tmp_path, args, needle, capsys):
    _reviews_csv(tmp_path / "reviews.csv", 10)
    args = [a.format(csv=tmp_path / "reviews.csv", tmp=tmp_path) for a in args]
    status, _, err = main_exit(args, capsys)
    assert status == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_own_files_are_known_by_name_for_the_run_only(tmp_path, capsys):
    from transfer_lab.cli import _user_data, parser
    from transfer_lab.data import tasks

    _reviews_csv(tmp_path / "reviews.csv", 20)
    (tmp_path / "films.txt").write_text("a film\nanother film\n")
    args = parser().parse_args(["run", "--target-file", str(tmp_path / "reviews.csv"),
                                "--text-column", "review", "--label-column", "sentiment",
                                "--source-file", str(tmp_path / "reviews.csv"),
                                "--unlabeled-file", str(tmp_path / "films.txt")])
    registered = dict(tasks.TASKS)
    files = _user_data(args)
    assert [f.name for f in files] == ["reviews", "source-reviews", "unlabeled-films"]
    assert (args.target, args.source, args.unlabeled) == tuple(f.name for f in files)
    assert args.arms[-2:] == ["dapt", "transfer"] and registered == tasks.TASKS
    with tasks.using(*files):
        assert tasks.get_task(args.target).size == 16 and tasks.get_corpus(args.unlabeled)
    with pytest.raises(ValueError, match="unknown task 'reviews'"):
        tasks.get_task(args.target)


def _codes_tsv(path, n: int = 20) -> None:
    """Write a TSV of reviews labelled 0/1, some with a stray quote."""
    texts = ['"Wow, a superb film', "a dull film", 'he said "go', "boring"]
    path.write_text("text\tlabel\n" + "".join(f"{texts[i % 4]} {i}\t{(i + 1) % 2}\n"
                                             for i in range(n)))


def test_label_words_map_the_labels_in_order_and_the_rows_are_counted(tmp_path, capsys):
    from transfer_lab.cli import _user_data, parser

    _codes_tsv(tmp_path / "film.tsv")
    args = parser().parse_args(["run", "--target-file", str(tmp_path / "film.tsv"),
                                "--label-words", "negative, positive"])
    (task,) = _user_data(args)
    assert task.classes == ("negative", "positive")
    out = capsys.readouterr().out
    assert "target: 20 rows of film.tsv (16 train, 4 test; labels 0 → negative, 1 → positive)" \
        in out, out
    test = task.load("test", 4)
    assert all(("superb" in t or "go" in t) == (y == 1) for t, y in zip(test["text"],
                                                                        test["label"],
                                                                        strict=True))


@pytest.mark.parametrize("extra, needle", [
    (["--label-words", "negative,positive,neutral"],
     "3 label words (negative, positive, neutral) for the 2 classes of film.tsv (0, 1)"),
    (["--model", "smollm2"], "the prompt arms (zero_shot, few_shot) and a decoder LLM answer"),
])
def test_label_words_mistakes_are_one_line(tmp_path, extra, needle, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _codes_tsv(tmp_path / "film.tsv")
    status, _, err = main_exit(["run", "--target-file", str(tmp_path / "film.tsv"), *extra],
                               capsys)
    assert status == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "--label-words negative,positive" in err, err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_label_words_need_a_target_file(capsys):
    status, _, err = main_exit(["run", "--label-words", "negative,positive"], capsys)
    assert status == 2 and "--label-words needs --target-file" in err, err
