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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import world
from .config import TrainConfig, cache_dir, profile
from .encode import (
    classification_collator,
    encode_classification,
    encode_mlm,
    mlm_collator,
)
from .metrics import classification_metrics
from .models import ASSETS, build_model, get_backbone, load_tokenizer
from .tasks import get_task
from .train import History, fit

INITS = ("supervised", "mlm", "pretrained")
ARMS = ("scratch", "transfer")


def source_config(model: str, init: str) -> TrainConfig:
    """Return the default configuration of source training for a backbone and objective."""
    p = profile()
    if init == "mlm":
        return TrainConfig(lr=1e-3, batch_size=64, max_steps=p.mlm_steps, warmup_ratio=0.02,
                           scheduler="constant_with_warmup", max_length=32, eval_every=0)
    steps = p.source_steps if get_backbone(model).world_only else p.source_steps // 10
    return TrainConfig(lr=5e-4 if get_backbone(model).world_only else 5e-5, batch_size=32,
                       max_steps=steps, warmup_ratio=0.06, eval_every=0)


def target_config(model: str) -> TrainConfig:
    """Return the default configuration of target fine-tuning (both arms) for a backbone."""
    if get_backbone(model).world_only:
        return TrainConfig(lr=3e-4, epochs=30, batch_size=16, eval_every=3)
    return TrainConfig(lr=5e-5, epochs=10, batch_size=16, eval_every=5)


def classification_metric(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Return accuracy and macro-F1 of the argmax of `logits`."""
    return classification_metrics(labels.cpu().numpy(), logits.argmax(-1).cpu().numpy())


def _key(*parts) -> str:
    """Return a short hash of the arguments and the world's fingerprint (names a cached θ_S)."""
    shipped = (ASSETS / "tokenizer.json").read_bytes()
    text = json.dumps([world.fingerprint(), hashlib.sha256(shipped).hexdigest(), *parts],
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
    argument) and reused: a later chapter loads it instead of training again.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    backbone = get_backbone(model)
    if init == "pretrained":
        if backbone.config is not None:
            raise ValueError(f"model {model!r} has no pretrained weights; use init='supervised' "
                             "or 'mlm', or a pretrained model such as 'minilm'")
        return Path(backbone.path())
    task = get_task(source) if init == "supervised" else None
    config = config or source_config(model, init)
    examples = examples or profile().source_examples
    key = _key(source if task else "mlm", model, init, examples, config.to_dict(), seed)
    target = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-{init}-{key}"
    if (target / "config.json").exists() and not out_dir:
        return target
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; choose a new --out folder "
                              "(transfer-lab never overwrites your files)")
    tokenizer = load_tokenizer(model)
    pretrained = backbone.config is None
    if init == "supervised":
        net = build_model(model, "classification", task.num_labels, seed=seed,
                          pretrained=pretrained)
        texts = task.load("train", examples, seed)
        data = encode_classification(texts, tokenizer, config.max_length)
        net.config.id2label = dict(enumerate(task.labels))
        net.config.label2id = {name: i for i, name in enumerate(task.labels)}
        history = fit(net, data, config=config.replace(seed=seed),
                      collate_fn=classification_collator(tokenizer))
    else:
        net = build_model(model, "mlm", seed=seed, pretrained=pretrained)
        data = encode_mlm(world.mlm_corpus(examples, seed), tokenizer, config.max_length)
        history = fit(net, data, config=config.replace(seed=seed),
                      collate_fn=mlm_collator(tokenizer, seed=seed))
    _save_atomically(net, tokenizer, target, {
        "source": source if task else "world mlm corpus", "model": model, "init": init,
        "examples": examples, "steps": len(history.steps), "seconds": history.seconds,
        "final_loss": float(np.mean([s["loss"] for s in history.steps[-50:]])),
        "config": config.to_dict()})
    return target


def _save_atomically(net, tokenizer, target: Path, card: dict) -> None:
    """Write model, tokenizer and a provenance card to a temp folder, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "theta_S.json").write_text(json.dumps(card, indent=2))
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


def target_data(target: str, labels: int, seed: int, tokenizer, max_length: int = 64):
    """Return (train, test) of the target encoded: `labels` seeded training examples."""
    task = get_task(target)
    if labels < 1:
        raise ValueError(f"--labels must be at least 1 (got {labels})")
    train = encode_classification(task.load("train", labels, seed), tokenizer, max_length)
    test = encode_classification(task.load("test"), tokenizer, max_length)
    return train, test


def transfer(
    theta_S: str | Path | None,
    target: str = "film_sentiment",
    labels: int = 64,
    seed: int = 0,
    model: str = "tiny",
    config: TrainConfig | None = None,
    data=None,
) -> tuple[Run, torch.nn.Module]:
    """Fine-tune θ_T(0) = θ_S (or random when θ_S is None) on the target; return (Run, θ_T*).

    θ_S's body is loaded with `from_pretrained`, the target gets a new head and a fresh
    optimizer. `data` = (train, test) already encoded, to share them between arms.
    """
    task = get_task(target)
    config = (config or target_config(model)).replace(seed=seed)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    train, test = data or target_data(target, labels, seed, tokenizer, config.max_length)
    net = build_model(model, "classification", task.num_labels, theta=theta_S, seed=seed)
    net.config.id2label = dict(enumerate(task.labels))
    net.config.label2id = {name: i for i, name in enumerate(task.labels)}
    history = fit(net, train, test, config=config, collate_fn=classification_collator(tokenizer),
                  metric_fn=classification_metric)
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    return Run("scratch" if theta_S is None else "transfer", seed, metrics, history), net


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

    def mean_std(self, arm: str, metric: str = "accuracy") -> tuple[float, float]:
        """Return the mean and standard deviation of a metric over seeds."""
        values = [r[metric] for r in self.arms[arm]]
        return float(np.mean(values)), float(np.std(values))

    @property
    def gain(self) -> float:
        """Return mean accuracy of transfer minus mean accuracy of scratch."""
        return self.mean_std("transfer")[0] - self.mean_std("scratch")[0]

    def table(self) -> str:
        """Return a plain-text table: arm, accuracy and macro-F1 as mean ± std."""
        title = (f"{self.target} from {self.source} ({self.model}, {self.init}), "
                 f"{self.labels} labels, {self.seeds} seeds")
        lines = [title, f"{'arm':<10}{'accuracy':>18}{'macro-F1':>18}"]
        for arm in self.arms:
            (a, sa), (f, sf) = self.mean_std(arm), self.mean_std(arm, "macro_f1")
            lines.append(f"{arm:<10}{a:>11.3f} ± {sa:.3f}{f:>11.3f} ± {sf:.3f}")
        lines.append(f"gain (transfer − scratch): {100 * self.gain:+.1f} accuracy points")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Return the comparison as a JSON-ready dict (the results.json schema)."""
        keys = ("source", "target", "model", "init", "labels", "seeds", "arms", "theta_S",
                "config", "seconds")
        return {k: getattr(self, k) for k in keys}

    def to_json(self, path: str | Path) -> Path:
        """Write the comparison to a JSON file and return its path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
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
) -> Comparison:
    """Run scratch and transfer on the same target data, labels, steps and seeds."""
    start = time.perf_counter()
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1 (got {seeds})")
    get_task(target)
    theta_S = theta_S or pretrain_source(source, model, init)
    config = (config or target_config(model)).replace(progress=False)
    result = Comparison(source, target, model, init, labels, seeds, {a: [] for a in ARMS},
                        str(theta_S), config.to_dict())
    tokenizer = load_tokenizer(str(theta_S))
    runs = [(seed, arm) for seed in range(seeds) for arm in ARMS]
    data = {}
    for seed, arm in tqdm(runs, desc="fine-tune", disable=not progress):
        if seed not in data:  # both arms of a seed see the same examples
            data = {seed: target_data(target, labels, seed, tokenizer, config.max_length)}
        run, _ = transfer(theta_S if arm == "transfer" else None, target, labels, seed, model,
                          config, data=data[seed])
        result.arms[arm].append(run.to_dict())
    result.seconds = time.perf_counter() - start
    return result
