"""Determinism: the same `transfer-lab run` with the same seed writes the same results.json in
fresh processes (timing fields, the keys named "seconds", aside; another PYTHONHASHSEED too),
even when the second one is killed with SIGKILL mid-run and continued with --resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import without_seconds

ARGS = ["run", "--labels", "32", "--seeds", "1", "--epochs", "2"]  # 2 steps an epoch per arm


def cli(out: Path, *extra: str, hash_seed: str = "0") -> subprocess.Popen:
    """Start `transfer-lab run` in a fresh process (one thread, a given PYTHONHASHSEED)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, "-m", "transfer_lab.cli", *ARGS, "--out", str(out),
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen) -> str:
    """Wait for a run to succeed and return its output."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def results(out: Path) -> dict:
    """Return a run's results.json without timing fields."""
    return without_seconds(json.loads((out / "results.json").read_text()))


@pytest.mark.slow
def test_same_command_same_results_also_after_sigkill_and_resume(tmp_path):
    first, second = cli(tmp_path / "a"), cli(tmp_path / "b", hash_seed="1")
    transfer_arm = tmp_path / "b" / "checkpoints" / "transfer-seed0"
    while second.poll() is None and not list(transfer_arm.glob("step-*")):
        time.sleep(0.01)  # scratch is done and recorded; transfer has finished one epoch
    second.kill()
    second.communicate(timeout=60)
    assert second.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finish(first)
    assert "resuming the run in" in finish(cli(tmp_path / "b", "--resume", hash_seed="1"))
    assert results(tmp_path / "b") == results(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "results.json").read_text())["seconds"] > 0
    assert not (tmp_path / "b" / "checkpoints").exists()  # removed once results.json is written
