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
        assert row["classes"] == list(task.classes) and row["description"] == task.description
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


def test_an_input_error_is_one_line_and_exit_2(monkeypatch, capsys):
    from transfer_lab import cli

    def mistaken(args):
        raise tl.InputError("unknown thing 'x';\n choose one of: a, b")

    monkeypatch.setattr(cli, "cmd_models", mistaken)
    status, _, err = main_exit(["models"], capsys)
    assert status == 2 and err == "transfer-lab: error: unknown thing 'x'; choose one of: a, b\n"


def test_an_unexpected_error_keeps_its_traceback_and_a_nonzero_exit(monkeypatch):
    from transfer_lab import cli

    def broken(args):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 16x2)")

    monkeypatch.setattr(cli, "cmd_models", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        cli.main(["models"])
    code = ("from transfer_lab import cli\n"
            "def broken(args):\n    raise MemoryError('out of memory')\n"
            "cli.cmd_models = broken\nraise SystemExit(cli.main(['models']))\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode not in (0, 2) and "Traceback" in proc.stderr
    assert "MemoryError: out of memory" in proc.stderr and "transfer-lab: error" not in proc.stderr


def test_user_errors_is_gone():
    from transfer_lab import cli

    assert not hasattr(cli, "USER_ERRORS")  # only InputError is the user's mistake


def test_family_options_parse_into_values_and_a_bad_one_names_the_family_options(capsys):
    from transfer_lab.cli import _option, main

    assert _option("shots=8") == {"shots": 8}
    assert _option("lora_r=none") == {"lora_r": None}
    assert _option("instruction=Say yes or no.") == {"instruction": "Say yes or no."}
    assert main(["run", "--target", "film_sentiment", "--option", "shots=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "classification family has no option 'shots'" in err
