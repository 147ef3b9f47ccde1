"""Reusable experiments: label curves, labels-to-match and weight distances (chapters 1, 3, 8).

`label_curve` fine-tunes θ_T(0) = θ_S and θ_T(0) = random on growing label budgets (same data,
seeds and optimizer steps for every budget); `labels_to_match` reads from it how many labels
scratch needs to match transfer; `weight_distance` measures how far fine-tuning moved θ_T.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from transfer_lab.cache import cache_key, cache_lock
from transfer_lab.config import TrainConfig, cache_dir
from transfer_lab.data.tasks import get_task
from transfer_lab.models import load_tokenizer
from transfer_lab.pipeline import ARMS, family_of, transfer
from transfer_lab.plots import COLORS, _axes, finish, plot_mean_std
from transfer_lab.results import Run
from transfer_lab.training.checkpoint import write_atomically
from transfer_lab.validate import InputError

STARTS = {"transfer": "from θ_S (transfer)", "scratch": "from random (scratch)"}


def curve_config(steps: int = 120, lr: float = 3e-4, batch_size: int = 16) -> TrainConfig:
    """Return a fine-tuning config with a fixed number of optimizer steps (flat cost per budget)."""
    return TrainConfig(lr=lr, max_steps=steps, batch_size=batch_size, eval_every=0,
                       progress=False)


def _per_arm(value, arms: Sequence[str]) -> dict:
    """Return `value` as {arm: value}: a mapping is checked, anything else is shared by all arms."""
    if isinstance(value, Mapping):
        missing = [arm for arm in arms if arm not in value]
        if missing:
            raise InputError(f"no entry for arm(s) {', '.join(missing)}; give one per arm of "
                             f"{', '.join(arms)} or a single value for all")
        return {arm: value[arm] for arm in arms}
    return dict.fromkeys(arms, value)


def label_curve(
    theta_S: str | Path,
    target: str = "film_sentiment",
    budgets: Sequence[int] | Mapping[str, Sequence[int]] = (16, 64, 256, 1024),
    seeds: int = 3,
    model: str = "tiny",
    config: TrainConfig | Mapping[str, TrainConfig] | None = None,
    test_examples: int | None = None,
) -> dict:
    """Return the runs per arm and label budget of scratch and transfer fine-tuning, one per seed.

    `curve["arms"][arm][n]` is the list, by seed, of `Run.to_dict()` rows of `tl.transfer`
    (the headline metric under "score", its curve and training loss beside it); `curve_means`
    reads the scores. `budgets` and `config` are shared by both arms or given per arm
    ({"scratch": ..., "transfer": ...}). Seed s draws the same nested training examples for
    every arm and budget (the 16 labels are the first 16 of the 64), and every run takes
    `config.max_steps` steps.
    Each finished run is kept in the cache, keyed by θ_S's weights, the data and the config:
    a curve cut short continues where it stopped, and runs that an earlier chapter made are
    read back (`curve["cached"]` counts them) instead of trained again. A run in progress is
    locked: the same curve in another process (a notebook beside this one) waits and reads it.
    """
    if seeds < 1:
        raise InputError(f"seeds must be at least 1 (got {seeds})")
    start = time.perf_counter()
    budgets = {arm: sorted(set(b)) for arm, b in _per_arm(budgets, ARMS).items()}
    configs = _per_arm(config or curve_config(), ARMS)
    if any(min(b, default=0) < 1 for b in budgets.values()):
        raise InputError(f"every label budget must be a positive integer (got {budgets})")
    lengths = {c.max_length for c in configs.values()}
    if len(lengths) > 1:
        raise InputError(f"both arms must use one max_length (got {sorted(lengths)})")
    task, tokenizer, length = get_task(target), load_tokenizer(str(theta_S)), lengths.pop()
    family = family_of(target, model)
    test = task.load("test", test_examples)
    arms = {arm: {n: [] for n in budgets[arm]} for arm in ARMS}
    largest = max(max(b) for b in budgets.values())
    starts = {"transfer": [str(theta_S), weights_digest(theta_S)], "scratch": "random"}
    cached = 0
    for seed in range(seeds):
        train = family.encode(task.load("train", largest, seed), tokenizer, task, length)
        for arm in ARMS:
            config = configs[arm].replace(progress=False)
            for n in budgets[arm]:
                data = (train.select(range(n)), test)
                key = cache_key("label-curve run", target, starts[arm], model,
                                config.to_dict(), seed, *map(data_digest, data))
                record = cache_dir() / "runs" / f"{key}.json"
                with cache_lock(record):  # a curve in another process waits, then reads it
                    row = json.loads(record.read_text()) if record.exists() else {}
                    if "score" in row:  # a Run's row (a record of metrics alone is trained again)
                        cached += 1
                    else:
                        run, _ = transfer(theta_S if arm == "transfer" else None, target, n,
                                          seed, model, config, data=data, arm=arm)
                        row = run.to_dict()
                        write_atomically(record, json.dumps(row))
                arms[arm][n].append(row)
    return {"target": target, "model": model, "theta_S": str(theta_S), "seeds": seeds,
            "test_examples": len(test), "config": {a: c.to_dict() for a, c in configs.items()},
            "arms": arms, "cached": cached, "seconds": time.perf_counter() - start}


def weights_digest(theta: str | Path) -> str:
    """Return the SHA-256 of a checkpoint folder's weights (which θ_S a run started from)."""
    digest = hashlib.sha256()
    for path in sorted(Path(theta).glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def data_digest(data) -> str:
    """Return the SHA-256 of a tokenized dataset's token ids and labels (which data a run saw)."""
    columns = {k: list(data[k]) for k in ("input_ids", "labels", "label") if k in data.column_names}
    return hashlib.sha256(json.dumps(columns).encode()).hexdigest()


def curve_scores(curve: dict, arm: str, n: int) -> list[float]:
    """Return the headline metric (accuracy) of each seed's run of one arm at budget `n`."""
    return [row["score"] for row in curve["arms"][arm][n]]


def curve_means(curve: dict, arm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (budgets, mean accuracy, std accuracy) of one arm of a label curve."""
    budgets = np.array(sorted(int(n) for n in curve["arms"][arm]))
    values = [np.asarray(curve_scores(curve, arm, n), dtype=float) for n in budgets]
    return budgets, np.array([v.mean() for v in values]), np.array([v.std() for v in values])


def labels_to_match(curve: dict) -> dict[int, dict]:
    """Return, per transfer budget N, the labels scratch needs to reach its accuracy and N's factor.

    Scratch's mean accuracy is interpolated linearly in log2(labels) between the budgets around
    the first crossing. When scratch never gets there, labels is the largest budget tried and
    the factor is a lower bound (bound ">="); when scratch's smallest budget already does, an
    upper bound ("<="); otherwise "=".
    """
    xs, ys, _ = curve_means(curve, "scratch")
    out = {}
    for n, target_acc, _ in zip(*curve_means(curve, "transfer"), strict=True):
        above = np.nonzero(ys >= target_acc)[0]
        if len(above) == 0:
            labels, bound = float(xs[-1]), ">="
        elif above[0] == 0:
            labels, bound = float(xs[0]), "<="
        else:
            i = above[0]
            frac = (target_acc - ys[i - 1]) / (ys[i] - ys[i - 1])
            labels = float(2 ** (math.log2(xs[i - 1])
                                 + frac * (math.log2(xs[i]) - math.log2(xs[i - 1]))))
            bound = "="
        factor = float(labels / n)
        sign = {"=": "", ">=": "≥ ", "<=": "≤ "}[bound]
        out[int(n)] = {"transfer_accuracy": float(target_acc), "scratch_labels": labels,
                       "factor": factor, "bound": bound, "text": f"{sign}{factor:.3g}×"}
    return out


def curve_table(curve: dict) -> str:
    """Return a plain-text table: labels, then each arm's accuracy as mean ± std over seeds."""
    rows = {}
    for arm in ARMS:
        for n, mean, std in zip(*curve_means(curve, arm), strict=True):
            rows.setdefault(int(n), {})[arm] = f"{mean:.3f} ± {std:.3f}"
    lines = [(f"{curve['target']} ({curve['model']}), {curve['seeds']} seeds, "
              f"{curve['test_examples']} test examples"),
             f"{'labels':>8}" + "".join(f"{arm:>18}" for arm in ARMS)]
    for n in sorted(rows):
        lines.append(f"{n:>8}" + "".join(f"{rows[n].get(arm, '—'):>18}" for arm in ARMS))
    return "\n".join(lines)


def plot_label_curve(curve: dict, ax=None, path: str | Path | None = None,
                     match: dict | None = None):
    """Plot test accuracy against labels (log scale) per arm, mean ± std over seeds.

    With `match` (from `labels_to_match`), each transfer point is marked with its factor, and a
    dotted arrow runs to the labels scratch needs for the same accuracy where the grid shows it.
    """
    fig, ax = _axes(ax)
    for arm in ARMS:
        budgets = sorted(int(n) for n in curve["arms"][arm])
        runs = np.array([curve_scores(curve, arm, n) for n in budgets]).T  # seeds × budgets
        cfg = curve["config"][arm]
        how = f"{cfg['max_steps']} steps" if cfg["max_steps"] else f"{cfg['epochs']} epochs"
        label = {"scratch": "scratch: θ_T(0) random", "transfer": "transfer: θ_T(0) = θ_S"}[arm]
        plot_mean_std(ax, budgets, runs, f"{label}, {how}, lr {cfg['lr']:g}", color=COLORS[arm])
    for n, m in (match or {}).items():
        if m["bound"] == "=":
            ax.annotate("", xy=(m["scratch_labels"], m["transfer_accuracy"]),
                        xytext=(n, m["transfer_accuracy"]),
                        arrowprops={"arrowstyle": "->", "ls": ":", "color": "k", "lw": 0.8})
        ax.annotate(m["text"], (n, m["transfer_accuracy"]), xytext=(0, -16),
                    textcoords="offset points", ha="center", fontsize=9)
    ax.axhline(0.5, color="k", lw=0.8, ls=":", label="chance (2 classes)")
    ax.set_xscale("log", base=2)
    ticks = sorted({int(n) for arm in ARMS for n in curve["arms"][arm]})
    ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
    ax.minorticks_off()
    ax.margins(x=0.08)
    ax.set(xlabel="target labels (log scale)", ylabel="test accuracy",
           title=f"{curve['target']}: accuracy against labels, mean ± std of "
                 f"{curve['seeds']} seeds", ylim=(0.4, 1.0))
    return finish(fig, path, [ax])


def layer_of(name: str, prefix: str = "bert") -> str:
    """Return the layer a parameter belongs to: embeddings, encoder.layer.i, pooler, classifier."""
    parts = name.removeprefix(f"{prefix}.").split(".")
    return ".".join(parts[:3]) if parts[:2] == ["encoder", "layer"] else parts[0]


@torch.no_grad()
def weight_distance(
    theta_0_model: torch.nn.Module, theta_star_model: torch.nn.Module, relative: bool = False
) -> dict[str, float]:
    """Return ‖θ_T* − θ_T(0)‖ per layer (Euclidean norm over all its weights), in model order.

    With `relative=True`, each distance is divided by that layer's ‖θ_T(0)‖.
    """
    before = dict(theta_0_model.named_parameters())
    after = dict(theta_star_model.named_parameters())
    if before.keys() != after.keys():
        diff = sorted(before.keys() ^ after.keys())
        raise InputError(f"the two models have different parameters ({', '.join(diff[:3])}, ...); "
                         "compare θ_T(0) and θ_T* of the same architecture")
    prefix = getattr(theta_0_model, "base_model_prefix", "bert")
    squared, norms = {}, {}
    for name, p0 in before.items():
        layer = layer_of(name, prefix)
        delta = after[name].detach().float().cpu() - p0.detach().float().cpu()
        squared[layer] = squared.get(layer, 0.0) + float(delta.pow(2).sum())
        norms[layer] = norms.get(layer, 0.0) + float(p0.detach().float().pow(2).sum())
    return {layer: math.sqrt(s) / (math.sqrt(norms[layer]) if relative else 1.0)
            for layer, s in squared.items()}


def initial_and_tuned(theta_S: str | Path | None, target: str = "film_sentiment",
                      **transfer_options) -> tuple[torch.nn.Module, Run, torch.nn.Module]:
    """Return (θ_T(0), Run, θ_T*): the start `transfer` builds for this seed, and where it ends.

    `transfer_options` go to `tl.transfer` (labels, seed, model, config, data); the config
    defaults to `curve_config()`.
    """
    task, model = get_task(target), transfer_options.get("model", "tiny")
    theta_0 = family_of(target, model).build(model, task, theta_S,
                                             seed=transfer_options.get("seed", 0))
    transfer_options.setdefault("config", curve_config())
    run, theta_star = transfer(theta_S, target, **transfer_options)
    return theta_0, run, theta_star


def steps_to_loss(history, level: float = 0.3, window: int = 10) -> int | None:
    """Return the first step at which the `window`-step mean training loss is below `level`."""
    loss = np.array([s["loss"] for s in history.steps])
    if len(loss) < window:
        return None
    below = np.nonzero(np.convolve(loss, np.ones(window) / window, mode="valid") < level)[0]
    return int(below[0]) + window if len(below) else None


def plot_weight_distance(distances: Mapping[str, Mapping[str, float]], ax=None,
                         path: str | Path | None = None, ylabel: str = "‖θ_T* − θ_T(0)‖"):
    """Draw grouped bars: one group per layer, one bar per start ({start: {layer: distance}})."""
    fig, ax = _axes(ax)
    starts = list(distances)
    layers = list(distances[starts[0]])
    width = 0.8 / len(starts)
    x = np.arange(len(layers))
    for i, start in enumerate(starts):
        ax.bar(x + (i - (len(starts) - 1) / 2) * width, [distances[start][k] for k in layers],
               width, label=STARTS.get(start, start), color=COLORS.get(start))
    ax.set_xticks(x, layers, rotation=20)
    ax.set(xlabel="layer of the model", ylabel=ylabel,
           title="How far fine-tuning moves the weights, per layer")
    return finish(fig, path, [ax])
