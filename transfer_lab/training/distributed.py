"""Scale-out: the same `fit()` on one process or on several (DDP with `torchrun`), chapter 6.

Generic pieces, no task in them: `launch` runs a module's command-line entry under `torchrun
--nproc_per_node N` and returns rank 0's JSON; `GlobalLoss` records each step's loss averaged
over the processes; `NoDropout` switches dropout off so that runs compare; `max_difference`
compares two runs' losses. Accelerate wraps the model in DistributedDataParallel, shards the
batches and averages the gradients, so a run on N processes follows the one-process run with
the same global batch, up to floating-point rounding. The chapter's run, a tiny model trained
through `tl.transfer`, is `transfer_lab.lab.distributed` (`python -m transfer_lab.lab.distributed
--out run.json`). On CPUs the processes talk over gloo (`ACCELERATE_USE_CPU=1`); on GPUs over
NCCL, unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from transfer_lab.training.loop import Callback, FitState
from transfer_lab.validate import InputError


class GlobalLoss(Callback):
    """Record the loss of each step averaged over all processes (the global batch's loss)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, state: FitState) -> None:
        """Average this step's loss over the processes and keep it."""
        loss = torch.tensor([state.loss], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(loss)
            loss /= torch.distributed.get_world_size()
        self.losses.append(loss.item())


def without_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Set every dropout probability of `model` to 0 and return it (comparable runs)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(getattr(model, "module", model), "config", None)  # DDP wraps the model
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        if hasattr(config, key):
            setattr(config, key, 0.0)
    return model


class NoDropout(Callback):
    """Switch every dropout of the model off before the first step (`without_dropout`).

    Each process draws its own dropout masks, so runs on different numbers of processes only
    compare without dropout.
    """

    def on_fit_start(self, state: FitState) -> None:
        """Set the dropout probabilities of the model `fit` trains to 0."""
        without_dropout(state.model)


def backend() -> str:
    """Return the torch.distributed backend in use ("none" for a single plain process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return str(torch.distributed.get_backend())
    return "none"


def launch(module: str, processes: int = 2, *, timeout: float = 600, **kwargs) -> dict:
    """Run `python -m module --out FILE …` in `processes` CPU processes with torchrun; return
    the JSON that rank 0 wrote to FILE.

    The command is `ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node N -m module
    --out FILE …` (`--standalone` picks a free port); `kwargs` become its flags (`_flags`).
    """
    with tempfile.TemporaryDirectory(prefix="transfer-lab-ddp-") as tmp:
        out = Path(tmp) / "run.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", module, "--out", str(out),
                   *_flags(kwargs)]
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"torchrun failed (exit {done.returncode}): {' '.join(command)}\n"
                               f"{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _flags(kwargs: dict) -> list[str]:
    """Turn keyword arguments into command-line flags (True: a bare flag; None, False: none)."""
    flags = []
    for key, value in kwargs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            flags += [f"--{key.replace('_', '-')}"] if value else []
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def max_difference(a: dict, b: dict) -> float:
    """Return the largest absolute difference between two runs' per-step losses."""
    if len(a["loss"]) != len(b["loss"]):
        raise InputError(f"runs differ in length ({len(a['loss'])} vs {len(b['loss'])} steps); "
                         "compare runs with the same steps and global batch")
    return max(abs(x - y) for x, y in zip(a["loss"], b["loss"], strict=True))
