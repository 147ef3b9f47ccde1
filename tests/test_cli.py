"""The transfer-lab command: listings and one-line errors with exit code 2."""

import json

import pytest
from _helpers import cli, main_exit

import transfer_lab as tl


def test_tasks_and_models_are_listed(capsys):
    status, out, _ = main_exit(["tasks"], capsys)
    assert status == 0
    assert "film_sentiment" in out and "product_sentiment" in out and "hub" in out
    for name, task in tl.TASKS.items():  # one line per task: its family and metric
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert line.split()[1:3] == [task.family, tl.get_family(task.family).metric], line
    status, out, _ = main_exit(["models"], capsys)
    assert status == 0 and "minilm" in out and "synthetic world only" in out


def test_tasks_json_lists_every_task_with_its_family_and_metric(capsys):
    status, out, _ = main_exit(["tasks", "--json"], capsys)
    assert status == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and [r["name"] for r in rows] == list(tl.TASKS)
    for row in rows:
        task = tl.get_task(row["name"])
        assert row["family"] == task.family in tl.FAMILIES
        assert row["metric"] == tl.get_family(task.family).metric
        assert row["labels"] == list(task.labels) and row["description"] == task.description
        assert row["where"] == ("hub, full profile" if task.hub else "offline")


@pytest.mark.parametrize("args, needle", [
    (["run", "--target", "nope"], "invalid choice: 'nope'"),
    (["run", "--model", "gpt5"], "invalid choice: 'gpt5'"),
    (["run", "--labels", "0"], "must be at least 1"),
    (["run", "--labels", "lots"], "not a whole number"),
    (["run", "--labels", "2000000"], "use at most"),
    (["run", "--target", "sst2"], "quick profile"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(args, needle, capsys):
    status, _, err = main_exit(args, capsys)
    assert status == 2
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_user_sees_one_line_and_exit_2_from_the_shell():
    proc = cli("run", "--labels", "2000000")
    assert proc.returncode == 2 and "use at most" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
