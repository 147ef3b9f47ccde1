"""The chapter's scale-out run: `tl.transfer` on one process or on several (torchrun), chapter 6.

`python -m transfer_lab.lab.distributed --out run.json` fine-tunes a tiny model for a few steps
through `tl.transfer` and writes its loss per step to JSON. Started under `torchrun
--nproc_per_node N`, each of the N processes takes `global_batch / N` examples a step; the
trajectory is the one-process trajectory with the same global batch, up to floating-point
rounding (`training.distributed`). `launch` starts such a run and `max_difference` compares two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from transfer_lab.config import TrainConfig
from transfer_lab.models import load_tokenizer
from transfer_lab.pipeline import target_data, transfer
from transfer_lab.training import distributed
from transfer_lab.training.distributed import max_difference, without_dropout  # noqa: F401
from transfer_lab.validate import InputError

TEST_EXAMPLES = 64  # test rows the run is evaluated on at its end (a Run has metrics)


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

    The model starts from θ (a `save_pretrained` folder, e.g. θ_S) or, without it, at random,
    and trains through `tl.transfer`. Run it plainly for one process, or under `torchrun` for
    several: the number of processes is read from WORLD_SIZE. The target's labels are exactly
    `steps * global_batch` examples, so one epoch is `steps` steps and no process gets a padded
    last batch. Dropout is off unless `dropout=True`, because each process draws its own
    dropout masks. The dict holds the run's numbers (processes, batches, "loss": the global
    loss per step, "lr", backend, seconds…) and "run", the `Run.to_dict()` of `tl.transfer`.
    """
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if global_batch % processes:
        raise InputError(f"global batch {global_batch} does not split over {processes} processes; "
                         f"choose a multiple of {processes}")
    # epochs, not max_steps: Accelerate steps the lr scheduler once per process and step, and
    # fit() sizes the schedule from the unsharded loader, so one epoch keeps the schedules equal.
    config = TrainConfig(lr=lr, epochs=1, batch_size=global_batch // processes, seed=seed,
                         mixed_precision=mixed_precision, eval_every=0, progress=False)
    labels = steps * global_batch
    tokenizer = load_tokenizer(str(theta) if theta else model)
    data = target_data(target, labels, seed, tokenizer, config.max_length, TEST_EXAMPLES, model)
    recorder = distributed.GlobalLoss()
    result, _ = transfer(theta, target, labels, seed, model, config, data=data,
                         callbacks=[recorder, *([] if dropout else [distributed.NoDropout()])])
    history = result.history
    return {"processes": processes, "global_batch": global_batch,
            "per_process_batch": global_batch // processes, "steps": len(recorder.losses),
            "loss": recorder.losses, "lr": [s["lr"] for s in history.steps],
            "theta": str(theta) if theta else None, "backend": distributed.backend(),
            "dropout": dropout, "mixed_precision": mixed_precision, "seconds": history.seconds,
            "run": result.to_dict()}


def launch(processes: int = 2, *, timeout: float = 600, **kwargs) -> dict:
    """Run `run(**kwargs)` in `processes` new CPU processes with torchrun; return rank 0's result
    (`training.distributed.launch` of this module)."""
    return distributed.launch(__name__, processes, timeout=timeout, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run() on this process and write rank 0's result to --out."""
    p = argparse.ArgumentParser(prog="python -m transfer_lab.lab.distributed",
                                description="Fine-tune a tiny model for a few steps on 1 or N "
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
        Path(args.out).write_text(json.dumps(result, indent=2))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
