"""The pipeline as the math says it: D_S → θ_S → save → load → θ_T(0) → fine-tune → θ_T* (ch. 4).

`pretrain_source` trains θ_S and saves it with `save_pretrained`; `transfer` starts a target
model from θ_S (or from random, θ_S=None) and fine-tunes it; `compare` runs both arms on the
same target data, label budget, steps and seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from . import validate, world
from .checkpoint import write_atomically
from .config import TrainConfig, cache_dir, profile
from .encode import (
    classification_collator,
    encode_classification,
    encode_mlm,
    mlm_collator,
)
from .metrics import classification_metrics
from .models import ASSETS, MaskedTokensOnly, build_model, get_backbone, load_tokenizer
from .tasks import get_task
from .train import History, fit

INITS = ("supervised", "mlm", "pretrained")
ARMS = ("scratch", "transfer")
RUN_ONLY = ("checkpoint_dir", "checkpoint_every", "resume")  # change where, not what, is trained
SOURCE_CHECKPOINT_EVERY = 100  # steps between checkpoints of θ_S's training
# Part of every θ_S cache key: bump it when a change to the training code changes the weights a
# θ_S gets, so caches from before retrain instead of serving the old weights.
# 2: torch's fused AdamW; masked-LM heads score only the masked tokens (MaskedTokensOnly).
TRAINING_VERSION = 2


def source_config(model: str, init: str) -> TrainConfig:
    """Return the default configuration of source training for a backbone and objective."""
    p = profile()
    if init == "mlm":
        return TrainConfig(lr=1e-3, batch_size=64, max_steps=p.mlm_steps, warmup_ratio=0.02,
                           scheduler="constant_with_warmup", max_length=32, eval_every=0)
    if get_backbone(model).world_only:
        return TrainConfig(lr=5e-4, batch_size=32, max_steps=p.source_steps, warmup_ratio=0.06,
                           eval_every=0)
    # a pretrained body needs few steps (chapter 4 uses the same, so θ_S is shared)
    return TrainConfig(lr=5e-5, batch_size=16, max_steps=p.pretrained_steps, warmup_ratio=0.1,
                       eval_every=0)


def target_config(model: str) -> TrainConfig:
    """Return the default configuration of target fine-tuning (both arms) for a backbone."""
    if get_backbone(model).world_only:
        return TrainConfig(lr=3e-4, epochs=30, batch_size=16, eval_every=3)
    return TrainConfig(lr=1e-4, epochs=3, batch_size=16, eval_every=0)  # as in chapter 4


def classification_metric(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Return accuracy and macro-F1 of the argmax of `logits`."""
    return classification_metrics(labels.cpu().numpy(), logits.argmax(-1).cpu().numpy())


def cache_key(*parts) -> str:
    """Return a short hash of the arguments, the world and the training code (names a θ_S)."""
    shipped = (ASSETS / "tokenizer.json").read_bytes()
    parts = [{k: v for k, v in p.items() if k not in RUN_ONLY} if isinstance(p, dict) else p
             for p in parts]
    text = json.dumps([world.fingerprint(), hashlib.sha256(shipped).hexdigest(),
                       TRAINING_VERSION, *parts],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def pretrain_source(
    source: str = "product_sentiment",
    model: str = "tiny",
    init: str = "supervised",
    *,
    examples: int | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
) -> Path:
    """Train θ_S on the source and return the folder `save_pretrained` wrote (model + tokenizer).

    `init="supervised"` trains a classifier on the source task's labels; `init="mlm"` trains a
    masked-language model on the world's unlabeled corpus; `init="pretrained"` uses the
    backbone's own pretrained weights as θ_S. Without `out_dir`, θ_S is cached (keyed by every
    argument) and reused: a later chapter loads it instead of training again. Training writes
    checkpoints beside the folder, so a run cut short (a sleeping laptop, a dead Colab session)
    continues where it stopped when called again.
    """
    validate.choice("init", init, INITS)
    backbone = get_backbone(model)
    if init == "pretrained":
        if backbone.config is not None:
            raise ValueError(f"model {model!r} has no pretrained weights; use init='supervised' "
                             "or 'mlm', or a pretrained model such as 'minilm'")
        return Path(backbone.path())
    task = get_task(source) if init == "supervised" else None
    config = config or source_config(model, init)
    examples = examples or profile().source_examples
    learning = {k: v for k, v in config.to_dict().items() if k not in ("progress", "log_dir")}
    key = cache_key(source if task else "mlm", model, init, examples, learning, seed)
    target = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-{init}-{key}"
    resumable = dict(checkpoint_dir=target.with_name(f".{target.name}.checkpoints"),
                     checkpoint_every=SOURCE_CHECKPOINT_EVERY, resume=True)

    def train():
        tokenizer = load_tokenizer(model)
        pretrained = backbone.config is None
        if init == "supervised":
            net = build_model(model, "classification", task.num_labels, seed=seed,
                              pretrained=pretrained)
            data = encode_classification(task.load("train", examples, seed), tokenizer,
                                         config.max_length)
            net.config.id2label = dict(enumerate(task.labels))
            net.config.label2id = {name: i for i, name in enumerate(task.labels)}
            collate = classification_collator(tokenizer)
        else:
            net = build_model(model, "mlm", seed=seed, pretrained=pretrained)
            data = encode_mlm(world.mlm_corpus(examples, seed), tokenizer, config.max_length)
            collate = mlm_collator(tokenizer, seed=seed)
        trained = net if init == "supervised" else MaskedTokensOnly(net)
        history = fit(trained, data, config=config.replace(seed=seed), collate_fn=collate,
                      **resumable)
        return net, tokenizer, theta_card(history, config, model=model, init=init,
                                          source=source if task else "world mlm corpus",
                                          examples=examples)

    cached_theta(target, train, reuse=not out_dir)
    shutil.rmtree(resumable["checkpoint_dir"], ignore_errors=True)
    return target


def cached_theta(target: Path, train: Callable[[], tuple], *, reuse: bool = True) -> Path:
    """Return `target` holding θ, built once by `train()` → (net, tokenizer, card) under a lock.

    A folder that already holds a model is reused (when `reuse`); a folder that holds anything
    else is never overwritten. Every θ_S of the book (sentiment, NER, QA, bilingual) is made so.
    """
    with cache_lock(target):
        if reuse and (target / "config.json").exists():
            return target
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"{target} exists and is not empty; choose a new --out folder "
                                  "(transfer-lab never overwrites your files)")
        net, tokenizer, card = train()
        save_theta(net, tokenizer, target, card)
    return target


def theta_card(history: History, config: TrainConfig, **about) -> dict:
    """Return θ's provenance card: what it learned from, its steps, seconds and final loss."""
    return {"source": about.pop("source"), **about, "steps": len(history.steps),
            "seconds": history.seconds,
            "final_loss": float(np.mean([s["loss"] for s in history.steps[-50:]])),
            "config": config.to_dict()}


@contextmanager
def cache_lock(target: Path):
    """Hold a file lock beside `target` while θ is built, so two processes never build it twice."""
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(f".{target.name}.lock"))):
        yield


def save_theta(net, tokenizer, target: Path, card: dict, card_name: str = "theta_S.json") -> None:
    """Write model, tokenizer and a provenance card to a temp folder, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / card_name).write_text(json.dumps(card, indent=2))
        if target.exists() and not any(target.iterdir()):
            target.rmdir()
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
            # another process cached the same θ_S meanwhile: keep theirs, drop ours
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Run:
    """One fine-tuning run on the target: its seed, final metrics and history."""

    arm: str
    seed: int
    metrics: dict
    history: History

    def to_dict(self) -> dict:
        """Return the run as the results file stores it."""
        curve = [{"epoch": e["epoch"], "accuracy": e.get("accuracy"), "loss": e["loss"]}
                 for e in self.history.evals]
        return {"seed": self.seed, **self.metrics, "seconds": self.history.seconds,
                "curve": curve, "train_loss": [s["loss"] for s in self.history.steps]}


def target_data(target: str, labels: int, seed: int, tokenizer, max_length: int = 64,
                test_examples: int | None = None):
    """Return (train, test) of the target encoded: `labels` seeded training examples.

    The test set has `test_examples` examples (default: the profile's `test_examples`).
    """
    task = get_task(target)
    if labels < 1:
        raise ValueError(f"--labels must be at least 1 (got {labels})")
    train = encode_classification(task.load("train", labels, seed), tokenizer, max_length,
                                  num_labels=task.num_labels)
    test = encode_classification(task.load("test", test_examples), tokenizer, max_length,
                                 num_labels=task.num_labels)
    return train, test


def transfer(
    theta_S: str | Path | None,
    target: str = "film_sentiment",
    labels: int = 64,
    seed: int = 0,
    model: str = "tiny",
    config: TrainConfig | None = None,
    data=None,
    *,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> tuple[Run, torch.nn.Module]:
    """Fine-tune θ_T(0) = θ_S (or random when θ_S is None) on the target; return (Run, θ_T*).

    θ_S's body is loaded with `from_pretrained`, the target gets a new head and a fresh
    optimizer. `data` = (train, test) already encoded, to share them between arms.
    `checkpoint_dir`, `checkpoint_every` and `resume` go to `fit`.
    """
    task = get_task(target)
    config = (config or target_config(model)).replace(seed=seed)
    if theta_S is not None:
        _check_head(theta_S, task, model)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    train, test = data or target_data(target, labels, seed, tokenizer, config.max_length)
    for part, name in ((train, "the training data"), (test, "the test data")):
        validate.not_empty(part, name)
        validate.labels(part["labels"][:], task.labels, where=name)
    net = build_model(model, "classification", task.num_labels, theta=theta_S, seed=seed)
    net.config.id2label = dict(enumerate(task.labels))
    net.config.label2id = {name: i for i, name in enumerate(task.labels)}
    history = fit(net, train, test, config=config, collate_fn=classification_collator(tokenizer),
                  metric_fn=classification_metric, checkpoint_dir=checkpoint_dir,
                  checkpoint_every=checkpoint_every, resume=resume)
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    return Run("scratch" if theta_S is None else "transfer", seed, metrics, history), net


_SAID: set = set()


def _check_head(theta_S, task, model: str) -> None:
    """Check θ_S's folder; say once when its head has another number of labels than the task."""
    size = validate.head_size(validate.theta_folder(theta_S, model))
    if size is not None and size != task.num_labels and (str(theta_S), task.name) not in _SAID:
        _SAID.add((str(theta_S), task.name))
        warnings.warn(f"θ_S in {theta_S} has a {size}-label head and {task.name!r} has "
                      f"{task.num_labels} labels: the target gets a new {task.num_labels}-label "
                      "head (its body still comes from θ_S)", stacklevel=3)


@dataclass
class Comparison:
    """Scratch against transfer on one target: per-seed metrics, mean ± std, learning curves."""

    source: str
    target: str
    model: str
    init: str
    labels: int
    seeds: int
    arms: dict[str, list[dict]] = field(default_factory=dict)
    theta_S: str = ""
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    test_examples: int = 0

    # what a task family reports (NER and QA override these): the metric of `gain`, the
    # table's columns, a factor to points, and what one label is
    metric: ClassVar[str] = "accuracy"
    columns: ClassVar[dict] = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    to_points: ClassVar[float] = 100.0
    unit: ClassVar[str] = "labels"

    def mean_std(self, arm: str, metric: str | None = None) -> tuple[float, float]:
        """Return the mean and standard deviation of a metric (default: `self.metric`)."""
        values = [r[metric or self.metric] for r in self.arms[arm]]
        return float(np.mean(values)), float(np.std(values))

    @property
    def gain(self) -> float:
        """Return the mean metric of transfer minus that of scratch."""
        return self.mean_std("transfer")[0] - self.mean_std("scratch")[0]

    def table(self) -> str:
        """Return a plain-text table: each arm's metrics as mean ± std over seeds."""
        title = (f"{self.target} from {self.source} ({self.model}, {self.init}), "
                 f"{self.labels} {self.unit}, {self.seeds} seeds")
        digits = 3 if self.to_points > 1 else 1
        lines = [title, f"{'arm':<16}" + "".join(f"{c:>18}" for c in self.columns.values())]
        for arm in self.arms:
            cells = (self.mean_std(arm, k) for k in self.columns)
            lines.append(f"{arm:<16}" + "".join(f"{m:>11.{digits}f} ± {s:<4.{digits}f}"
                                                for m, s in cells))
        name = self.columns[self.metric]
        lines.append(f"gain (transfer − scratch): {self.to_points * self.gain:+.1f} {name} points")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Return the comparison as a JSON-ready dict (the results.json schema)."""
        keys = ("source", "target", "model", "init", "labels", "seeds", "arms", "theta_S",
                "config", "seconds", "test_examples")
        return {k: getattr(self, k) for k in keys}

    def to_json(self, path: str | Path) -> Path:
        """Write the comparison to a JSON file and return its path."""
        path = Path(path)
        write_atomically(path, json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> Comparison:
        """Read a comparison written by `to_json`."""
        return cls(**json.loads(Path(path).read_text()))

    def plot(self, path: str | Path | None = None, ax=None):
        """Plot test accuracy against epoch for each arm (mean ± std); save it if `path`."""
        from .plots import plot_curves

        return plot_curves(self, path=path, ax=ax)


def compare(
    source: str = "product_sentiment",
    target: str = "film_sentiment",
    model: str = "tiny",
    init: str = "supervised",
    labels: int = 64,
    seeds: int = 3,
    *,
    config: TrainConfig | None = None,
    theta_S: str | Path | None = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    save: str | Path | None = None,
    test_examples: int | None = None,
) -> Comparison:
    """Run scratch and transfer on the same target data, labels, steps and seeds.

    With `checkpoint_dir`, each finished run is recorded there and the run in progress is
    checkpointed (every `checkpoint_every` steps and each epoch); `resume=True` skips the
    recorded runs and continues the interrupted one, so the result equals an uninterrupted one.
    `save` keeps θ_T* of the transfer arm's first seed (model + tokenizer) in that folder, for
    `tl.predict` and `transfer-lab predict`. `test_examples` sizes the test set (default: the
    profile's; a smaller one makes evaluating a large model cheaper).
    """
    start = time.perf_counter()
    _check_arguments(source, target, model, init, labels, seeds, theta_S)
    if save and Path(save).exists() and any(Path(save).iterdir()) and not (
            resume and (Path(save) / "theta_T.json").exists()):
        raise FileExistsError(f"{save} exists and is not empty; choose a new folder to save θ_T* "
                              "in (transfer-lab never overwrites your files)")
    theta_S = theta_S or pretrain_source(source, model, init)
    config = (config or target_config(model)).replace(progress=False)
    result = Comparison(source, target, model, init, labels, seeds, {a: [] for a in ARMS},
                        str(theta_S), config.to_dict(),
                        test_examples=len(get_task(target).load("test", test_examples)))
    runs_dir = _runs_dir(checkpoint_dir, result, resume)
    tokenizer = load_tokenizer(str(theta_S))
    runs = [(seed, arm) for seed in range(seeds) for arm in ARMS]
    data = {}
    for seed, arm in tqdm(runs, desc="fine-tune", disable=not progress):
        record = runs_dir / f"{arm}-seed{seed}.json" if runs_dir else None
        if resume and record and record.exists():  # finished before the interruption
            result.arms[arm].append(json.loads(record.read_text()))
            continue
        if seed not in data:  # both arms of a seed see the same examples
            data = {seed: target_data(target, labels, seed, tokenizer, config.max_length,
                                      test_examples)}
        run_dir = record.with_suffix("") if record else None
        run, net = transfer(theta_S if arm == "transfer" else None, target, labels, seed, model,
                          config, data=data[seed], checkpoint_dir=run_dir,
                          checkpoint_every=checkpoint_every, resume=resume)
        result.arms[arm].append(run.to_dict())
        if save and arm == "transfer" and seed == 0:
            save_theta(net, tokenizer, Path(save), {
                "theta_S": str(theta_S), "target": target, "labels": labels, "seed": seed,
                "model": model, "max_length": config.max_length, **run.metrics},
                card_name="theta_T.json")
        if record:
            write_atomically(record, json.dumps(run.to_dict()))
            shutil.rmtree(run_dir, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def _check_arguments(source, target, model, init, labels, seeds, theta_S) -> None:
    """Raise on a bad argument of `compare` before anything is trained."""
    validate.choice("init", init, INITS)
    task = get_task(target)
    if task.kind != "classification":
        raise ValueError(f"task {target!r} is a {task.kind} task; compare() and transfer-lab run "
                         "take a classification target (see transfer-lab tasks)")
    if theta_S is None and init == "supervised":
        get_task(source).require_data()
    get_backbone(model)
    task.require_data()
    for name, value in (("labels", labels), ("seeds", seeds)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name} must be at least 1 (got {value!r})")
    if labels > task.size:
        raise ValueError(f"--labels {labels} is more than the {task.size} training examples of "
                         f"{target!r}; use at most {task.size}")


def _runs_dir(checkpoint_dir, result: Comparison, resume: bool) -> Path | None:
    """Return the folder of a comparison's checkpoints; on resume, check it is the same one."""
    if checkpoint_dir is None:
        if resume:
            raise ValueError("resume=True needs the folder of the comparison: pass "
                             "checkpoint_dir=...")
        return None
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in result.to_dict().items() if k not in ("arms", "seeds", "seconds")}
    card = folder / "comparison.json"
    if not resume and any(folder.iterdir()):
        raise FileExistsError(f"{folder} holds checkpoints of an earlier comparison; pass "
                              "resume=True to continue it, or choose a new folder")
    if resume and card.exists():
        saved = json.loads(card.read_text())
        for key, value in settings.items():
            if saved.get(key) != json.loads(json.dumps(value)):
                raise ValueError(f"{folder} holds a comparison with {key}={saved.get(key)!r}, "
                                 f"not {value!r}; resume with the same settings, or use a new "
                                 "folder")
    else:
        write_atomically(card, json.dumps(settings, indent=2))
    return folder
