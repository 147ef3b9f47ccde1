"""The θ cache: keys that name a θ, a lock while it is built, cards that say what it learned.

Every θ of the book (θ_S of each family, a backbone converted once) is built by `cached_theta`:
under a file lock, into a temporary folder renamed into place, so two processes never build it
twice and an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from transfer_lab.config import TrainConfig
from transfer_lab.data import world
from transfer_lab.models import ASSETS
from transfer_lab.training.loop import History
from transfer_lab.validate import OutputExists

RUN_ONLY = ("checkpoint_dir", "checkpoint_every", "resume", "progress", "log_dir")
# Part of every cache key: bump it when a change to the training code changes the weights a θ
# gets, so caches from before retrain instead of serving the old weights.
# 2: torch's fused AdamW; masked-LM heads score only the masked tokens (MaskedTokensOnly).
TRAINING_VERSION = 2


def cache_key(*parts) -> str:
    """Return a short hash of the arguments, the world and the training code (names a θ)."""
    shipped = (ASSETS / "tokenizer.json").read_bytes()
    parts = [{k: v for k, v in p.items() if k not in RUN_ONLY} if isinstance(p, dict) else p
             for p in parts]
    text = json.dumps([world.fingerprint(), hashlib.sha256(shipped).hexdigest(),
                       TRAINING_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@contextmanager
def cache_lock(folder: Path):
    """Hold a file lock beside `folder` while θ is built, so two processes never build it twice."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.with_name(f".{folder.name}.lock"))):
        yield


def cached_theta(folder: Path, train: Callable[[], tuple], *, reuse: bool = True) -> Path:
    """Return `folder` holding θ, built once by `train()` → (net, tokenizer, card) under a lock.

    A folder that already holds a model is reused (when `reuse`); a folder that holds anything
    else is never overwritten.
    """
    with cache_lock(folder):
        if reuse and (folder / "config.json").exists():
            return folder
        if folder.exists() and any(folder.iterdir()):
            raise OutputExists(f"{folder} exists and is not empty; choose a new --out folder "
                                  "(transfer-lab never overwrites your files)")
        net, tokenizer, card = train()
        save_theta(net, tokenizer, folder, card)
    return folder


def theta_card(history: History, config: TrainConfig, **about) -> dict:
    """Return θ's provenance card: what it learned from, its steps, seconds and final loss."""
    return {"source": about.pop("source"), **about, "steps": len(history.steps),
            "seconds": history.seconds,
            "final_loss": float(np.mean([s["loss"] for s in history.steps[-50:]])),
            "config": config.to_dict()}


def save_theta(net: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path,
               card: dict, card_name: str = "theta_S.json") -> None:
    """Write model, tokenizer and a provenance card to a temp folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / card_name).write_text(json.dumps(card, indent=2, allow_nan=False))
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "config.json").exists():
                raise
            # another process cached the same θ meanwhile: keep theirs, drop ours
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
