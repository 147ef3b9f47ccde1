"""Checkpoints of a training run: atomic writes, the latest good one, safe loading (chapter 6).

A run folder holds one folder per checkpoint, `step-00000120/`, with three files:

- `model.safetensors`: the weights (safetensors: reading them runs no code);
- `trainer.pt`: optimizer, scheduler and random-number states, read with `weights_only=True`;
- `checkpoint.json`: step, epoch, batches done in that epoch, the history so far, and the
  size and SHA-256 of the two other files.

A checkpoint is written into a hidden temporary folder, each file is flushed to disk (fsync),
and only then is the folder renamed into place: a crash during a write leaves the previous
checkpoint intact, and a half-written folder never looks like a good one. `latest_good` checks
sizes and hashes and falls back to the previous checkpoint when the newest is truncated or
corrupt; `load_checkpoint` says which file is broken.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from transfer_lab.validate import InputError

WEIGHTS, TRAINER, MANIFEST = "model.safetensors", "trainer.pt", "checkpoint.json"
FORMAT = 1
_NAME = re.compile(r"^step-(\d+)$")


class CheckpointError(InputError):
    """A checkpoint file is missing, truncated, corrupt or unsafe to load (the message says
    which folder to remove or which setting to restore)."""


@dataclass
class Checkpoint:
    """A verified checkpoint: where training stood and its history so far."""

    path: Path
    step: int
    epoch: int  # the epoch to continue in
    batch: int  # batches of that epoch already done
    history: dict
    meta: dict

    def load_weights(self, model: torch.nn.Module) -> None:
        """Copy the saved weights into `model` (safetensors: no code runs)."""
        try:
            missing, unexpected = load_model(model, self.path / WEIGHTS, strict=False)
        except (SafetensorError, OSError, RuntimeError) as err:
            raise CheckpointError(f"cannot read {self.path / WEIGHTS} ({_short(err)}); delete "
                                  "this checkpoint folder to resume from the one before") from None
        if missing or unexpected:
            raise CheckpointError(f"{self.path / WEIGHTS} does not fit this model "
                                  f"({len(missing)} weights missing, {len(unexpected)} "
                                  "unexpected); resume with the model the run started with, or "
                                  "use a new checkpoint folder")

    def trainer_state(self) -> dict:
        """Return the optimizer, scheduler and RNG states (loaded with weights_only=True)."""
        try:
            return torch.load(self.path / TRAINER, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(f"{self.path / TRAINER} is damaged or holds more than tensors "
                                  "and plain data; refusing to load it (weights_only=True): "
                                  "delete this checkpoint folder to resume from the one before"
                                  ) from None
        except (RuntimeError, EOFError, OSError) as err:
            raise CheckpointError(f"cannot read {self.path / TRAINER} ({_short(err)}); delete "
                                  "this checkpoint folder to resume from the one before") from None


def _short(err: Exception) -> str:
    """Return the first line of an exception's message (at most 120 characters)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:120]


# --- random-number states ----------------------------------------------------------------

def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    """Return the states of Python's, NumPy's and torch's global RNGs and of `generators`."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
             "torch": torch.get_rng_state(),
             "generators": {k: g.get_state() for k, g in (generators or {}).items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore the RNG states saved by `rng_state` (and those of `generators` it holds)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, g in (generators or {}).items():
        if name in state["generators"]:
            g.set_state(state["generators"][name])


# --- writing -----------------------------------------------------------------------------

def save_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    *,
    step: int,
    epoch: int = 0,
    batch: int = 0,
    history: dict | None = None,
    rng: dict | None = None,
    meta: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write a checkpoint atomically into `run_dir`/step-N, keep the newest `keep`; return it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=run_dir))
    try:
        save_model(model, str(tmp / WEIGHTS))
        torch.save({"optimizer": optimizer.state_dict() if optimizer else None,
                    "scheduler": scheduler.state_dict() if scheduler else None,
                    "rng": rng or rng_state()}, tmp / TRAINER)
        files = {name: _fingerprint(tmp / name) for name in (WEIGHTS, TRAINER)}
        manifest = {"format": FORMAT, "step": step, "epoch": epoch, "batch": batch,
                    "history": history or {}, "meta": meta or {}, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, default=_plain, allow_nan=False))
        for name in (WEIGHTS, TRAINER, MANIFEST):
            _fsync(tmp / name)
        _fsync(tmp)
        _move_into_place(tmp, final)
        _fsync(run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune(run_dir, keep)
    return final


def _plain(value):
    """Return a JSON-ready stand-in for a NumPy or torch scalar (metrics may return them)."""
    return value.item() if hasattr(value, "item") else str(value)


def _fingerprint(path: Path) -> dict:
    """Return a file's size and SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _fsync(path: Path) -> None:
    """Flush a file or a folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str | Path, text: str) -> Path:
    """Write a text file through a temporary file, fsync and rename: never half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    _fsync(tmp)
    os.replace(tmp, path)
    return path


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; a good `final` (same step) is kept, a broken one replaced."""
    if final.exists():
        try:
            verify(final)
            return  # the same step was written before (training is deterministic): keep it
        except CheckpointError:
            _discard(final)
    os.replace(tmp, final)


def _discard(path: Path) -> None:
    """Rename a checkpoint folder to a hidden name, then delete it (never half-visible)."""
    hidden = path.with_name(f".old-{path.name}-{os.getpid()}")
    try:
        os.replace(path, hidden)
    except FileNotFoundError:
        return
    shutil.rmtree(hidden, ignore_errors=True)


def prune(run_dir: str | Path, keep: int = 2) -> None:
    """Delete all but the newest `keep` checkpoints of a run folder."""
    for path in checkpoints(run_dir)[:-keep or None]:
        _discard(path)


# --- reading -----------------------------------------------------------------------------

def checkpoints(run_dir: str | Path) -> list[Path]:
    """Return the checkpoint folders of a run, oldest first (hidden temporary folders skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def verify(path: str | Path) -> dict:
    """Return a checkpoint's manifest after checking each file's size and SHA-256."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(f"{path / MANIFEST} is missing: the checkpoint was not finished"
                              ) from None
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path / MANIFEST} is truncated or corrupt (not a checkpoint "
                              "manifest)") from None
    for name, expected in files.items():
        file = path / name
        if not file.exists():
            raise CheckpointError(f"{file} is missing")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{file} is truncated or corrupt ({size:,} bytes, expected "
                                  f"{expected['bytes']:,})")
        if _fingerprint(file)["sha256"] != expected["sha256"]:
            raise CheckpointError(f"{file} is corrupt (its SHA-256 does not match the manifest)")
    return manifest


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Return the checkpoint in `path`, verified; a broken file raises CheckpointError naming it."""
    path = Path(path)
    m = verify(path)
    return Checkpoint(path, m["step"], m["epoch"], m["batch"], m["history"], m.get("meta", {}))


def latest_good(run_dir: str | Path) -> Checkpoint | None:
    """Return the newest checkpoint of a run that verifies, or None; warn about each bad one."""
    for path in reversed(checkpoints(run_dir)):
        try:
            return load_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"skipping a broken checkpoint: {err}; resuming from the one before",
                          stacklevel=2)
    return None


def restore(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    generators: dict[str, torch.Generator] | None = None,
    expect: dict | None = None,
) -> Checkpoint | None:
    """Load the newest good checkpoint of a run into model, optimizer, scheduler and RNGs.

    Returns it, or None when the run has none. A broken checkpoint is reported in one warning
    line and the one before it is used. `expect` (the run's settings) must equal the settings
    the checkpoint was written with.
    """
    for path in reversed(checkpoints(run_dir)):
        try:
            found = load_checkpoint(path)
            _same_settings(found, expect or {})
            trainer = found.trainer_state()
            found.load_weights(model)
        except CheckpointError as err:
            warnings.warn(f"skipping a broken checkpoint: {err}; resuming from the one before",
                          stacklevel=2)
            continue
        if optimizer is not None and trainer["optimizer"] is not None:
            optimizer.load_state_dict(trainer["optimizer"])
        if scheduler is not None and trainer["scheduler"] is not None:
            scheduler.load_state_dict(trainer["scheduler"])
        set_rng_state(trainer["rng"], generators)
        return found
    return None


def _same_settings(found: Checkpoint, expect: dict) -> None:
    """Raise a CheckpointError naming the first setting that differs from the checkpoint's."""
    for key, value in expect.items():
        saved = found.meta.get(key, value)
        if saved != value:
            raise InputError(f"{found.path} was written with {key}={saved!r}, this run has "
                             f"{key}={value!r}; resume with the same settings, or start in a new "
                             "checkpoint folder")


class Saver:
    """The checkpoints of one `fit` run: save every `every` steps and after each epoch, resume.

    A resumed run must draw what the interrupted one would have drawn. The data loader's
    generator is saved as it was when the epoch began (the resumed run draws the same order,
    then skips the batches done); a collator's own generator (masked-LM masking) as it was
    before the next batch was collated (data loaders collate ahead); the global RNGs as they
    are. Without a folder it saves nothing, so `fit` calls it unconditionally.
    """

    def __init__(self, run_dir, every: int = 0, *, settings: dict | None = None,
                 main: bool = True):
        if every < 0:
            raise InputError(f"checkpoint_every must be 0 (epochs only) or a number of steps "
                             f"(got {every})")
        self.run_dir = Path(run_dir) if run_dir else None
        self.every, self.main, self.settings = every, main, settings or {}
        self.own: torch.Generator | None = None  # the collator's generator
        self.before: list[torch.Tensor] = []  # its state before each batch of this epoch
        self.latest: Path | None = None
        self._failed = False

    def collator(self, collate_fn):
        """Return `collate_fn`, wrapped to record its own generator's state if it has one."""
        if getattr(collate_fn, "seed", None) is None or not hasattr(collate_fn, "create_rng"):
            return collate_fn
        if not isinstance(getattr(collate_fn, "generator", None), torch.Generator):
            collate_fn.create_rng("pt")  # what the collator does on its first batch anyway
        self.own = collate_fn.generator

        def recording(examples):
            self.before.append(self.own.get_state())
            return collate_fn(examples)

        return recording

    def track(self, model, optimizer, scheduler, data: torch.Generator) -> None:
        """Name what is saved: the model, optimizer, scheduler and the data order's generator."""
        self.model, self.optimizer, self.scheduler, self.data = model, optimizer, scheduler, data
        self.epoch_rng = data.get_state()

    def _generators(self) -> dict[str, torch.Generator]:
        """Return the generators a checkpoint holds besides the global ones."""
        return {"data": self.data, **({"collator": self.own} if self.own is not None else {})}

    def resume(self) -> Checkpoint | None:
        """Restore the newest good checkpoint (weights, optimizer, scheduler, RNGs); return it."""
        if self.run_dir is None:
            raise InputError("resume=True needs a checkpoint folder: pass checkpoint_dir=...")
        found = restore(self.run_dir, self.model, self.optimizer, self.scheduler,
                        self._generators(), self.settings)
        self.latest = found.path if found else None
        return found

    def epoch_started(self) -> None:
        """Remember the data order's generator as the epoch begins."""
        self.epoch_rng = self.data.get_state()
        self.before = []

    def step_done(self, step: int, epoch: int, batch: int, batches: int, history) -> None:
        """Save if `every` steps have passed (not on an epoch's last batch: its end saves)."""
        if self.every and step % self.every == 0 and batch < batches:
            self.save(step, epoch, batch, history)

    def save(self, step: int, epoch: int, batch: int, history) -> None:
        """Write a checkpoint at this position; a failed write warns once and training goes on."""
        if self.run_dir is None or not self.main:
            return
        rng = rng_state(self._generators())
        if batch:  # mid-epoch: the states the rest of the epoch starts from
            rng["generators"]["data"] = self.epoch_rng
            if self.own is not None and batch < len(self.before):
                rng["generators"]["collator"] = self.before[batch]
        try:
            self.latest = save_checkpoint(
                self.run_dir, self.model, self.optimizer, self.scheduler, step=step, epoch=epoch,
                batch=batch, history=history.to_dict(), rng=rng, meta=self.settings)
        except OSError as err:
            if not self._failed:
                warnings.warn(f"could not write a checkpoint to {self.run_dir} ({_short(err)}); "
                              "training goes on without it: free some disk space", stacklevel=2)
            self._failed = True

    def finish(self) -> None:
        """Keep only the final checkpoint of a finished run."""
        if self.run_dir is not None and self.main:
            prune(self.run_dir, keep=1)
