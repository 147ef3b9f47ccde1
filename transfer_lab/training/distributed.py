"""Scale-out: the same `fit()` on one process or on several (DDP with `torchrun`), chapter 6.

`python -m transfer_lab.training.distributed --out run.json` trains a tiny model for a few steps and writes
its loss trajectory to JSON. Started under `torchrun --nproc_per_node N`, each of the N processes
takes `global_batch / N` examples a step; Accelerate wraps the model in DistributedDataParallel,
shards the batches and averages the gradients, so the trajectory is the one-process trajectory
with the same global batch, up to floating-point rounding. `launch` starts such a run and
`max_difference` compares two of them. On CPUs the processes talk over gloo
(`ACCELERATE_USE_CPU=1`); on GPUs over NCCL, unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from transfer_lab.config import TrainConfig
from transfer_lab.training.fit import Callback, FitState, fit
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
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, 0.0)
    return model


def run(
    steps: int = 20,
    global_batch: int = 16,
    *,
    target: str = "film_sentiment",
    model: str = "tiny",
    theta: str | Path | None = None,
    lr: float = 3e-4,
    seed: int = 0,
    dropout: bool = False,
    mixed_precision: str = "no",
) -> dict:
    """Fine-tune `model` for `steps` steps on this process's share of the batch; return the run.

    The model starts from θ (a `save_pretrained` folder, e.g. θ_S) or, without it, at random.
    Run it plainly for one process, or under `torchrun` for several: the number of processes is
    read from WORLD_SIZE. The data set holds exactly `steps * global_batch` examples, so one
    epoch is `steps` steps and no process gets a padded last batch. Dropout is off unless
    `dropout=True`, because each process draws its own dropout masks.
    """
    from transfer_lab.data.tasks import get_task
    from transfer_lab.families.classification import classification_collator, encode_classification
    from transfer_lab.models import build_model, load_tokenizer

    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if global_batch % processes:
        raise InputError(f"global batch {global_batch} does not split over {processes} processes; "
                         f"choose a multiple of {processes}")
    task = get_task(target)
    tokenizer = load_tokenizer(str(theta) if theta else model)
    data = encode_classification(task.load("train", steps * global_batch, seed), tokenizer)
    net = build_model(model, "classification", task.num_labels, theta=theta, seed=seed)
    if not dropout:
        without_dropout(net)
    # epochs, not max_steps: Accelerate steps the lr scheduler once per process and step, and
    # fit() sizes the schedule from the unsharded loader, so one epoch keeps the schedules equal.
    config = TrainConfig(lr=lr, epochs=1, batch_size=global_batch // processes, seed=seed,
                         mixed_precision=mixed_precision, progress=False)
    recorder = GlobalLoss()
    history = fit(net, data, config=config, collate_fn=classification_collator(tokenizer),
                  callbacks=[recorder])
    return {"processes": processes, "global_batch": global_batch,
            "per_process_batch": global_batch // processes, "steps": len(recorder.losses),
            "loss": recorder.losses, "lr": [s["lr"] for s in history.steps],
            "theta": str(theta) if theta else None, "backend": _backend(), "dropout": dropout,
            "mixed_precision": mixed_precision, "seconds": history.seconds}


def _backend() -> str:
    """Return the torch.distributed backend in use ("none" for a single plain process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return str(torch.distributed.get_backend())
    return "none"


def launch(processes: int = 2, *, timeout: float = 600, **kwargs) -> dict:
    """Run `run(**kwargs)` in `processes` new CPU processes with torchrun; return rank 0's result.

    The command is `ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node N -m
    transfer_lab.training.distributed --out FILE …` (`--standalone` picks a free port).
    """
    with tempfile.TemporaryDirectory(prefix="transfer-lab-ddp-") as tmp:
        out = Path(tmp) / "run.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "transfer_lab.training.distributed",
                   "--out", str(out), *_flags(kwargs)]
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"torchrun failed (exit {done.returncode}): {' '.join(command)}\n"
                               f"{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _flags(kwargs: dict) -> list[str]:
    """Turn run()'s keyword arguments into command-line flags."""
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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run() on this process and write rank 0's result to --out."""
    p = argparse.ArgumentParser(prog="python -m transfer_lab.training.distributed",
                                description="Train a tiny model for a few steps on 1 or N "
                                "processes (start it with torchrun) and write the loss per step.")
    p.add_argument("--out", required=True, help="JSON file for the result (written by rank 0)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--target", default="film_sentiment")
    p.add_argument("--model", default="tiny")
    p.add_argument("--theta", default=None, help="start from this save_pretrained folder")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dropout", action="store_true", help="keep dropout on (runs then differ)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    args = p.parse_args(argv)
    from transfer_lab.config import quiet

    quiet()
    result = run(args.steps, args.global_batch, target=args.target, model=args.model,
                 theta=args.theta, lr=args.lr, seed=args.seed, dropout=args.dropout,
                 mixed_precision=args.mixed_precision)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps(result, indent=2, allow_nan=False))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
