"""Matplotlib figures the book uses (every chapter): one palette for arms, one finisher."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from transfer_lab.stats import sample_std

# One colour per arm in every figure of the book; other arms take the next free colour.
COLORS = {"scratch": "tab:gray", "transfer": "tab:blue", "bow": "tab:brown",
          "pretrained": "tab:olive", "dapt": "tab:cyan", "zero_shot": "tab:pink",
          "few_shot": "tab:purple"}
OTHERS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:pink", "tab:cyan")


def arm_colors(arms: Iterable[str]) -> dict[str, str]:
    """Return a colour for each arm: the palette's, else the next unused of OTHERS."""
    arms = list(arms)
    free = iter([c for c in OTHERS if c not in {COLORS.get(a) for a in arms}] * 3)
    return {arm: COLORS.get(arm) or next(free) for arm in arms}


def _axes(ax, figsize: tuple[float, float] = (6, 4)):
    """Return (figure, axes), making a new figure when `ax` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def finish(fig, path: str | Path | None = None, legend: Iterable = ()):
    """Put a legend below each of `legend`'s axes (never over the data), tighten the layout,
    save if `path`; return fig."""
    for ax in legend:
        entries = len(ax.get_legend_handles_labels()[1])
        if entries:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(2, entries),
                      fontsize=9, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_mean_std(ax, x, runs: np.ndarray, label: str, color=None, marker: str = "o"):
    """Draw the mean of `runs` (seeds × points) against x with a ±std band (n − 1; none for one)."""
    runs = np.asarray(runs, dtype=float)
    mean, std = runs.mean(0), sample_std(runs, axis=0)
    ax.plot(x, mean, marker=marker, label=label, color=color)
    if std is not None:
        ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=color)
    return ax


def _label(result, arm: str) -> str:
    """Return an arm's legend entry: its name (transfer names its source) and its seeds."""
    source = f"the pretrained {result.model}" if result.init == "pretrained" else result.source
    name = f"transfer, θ_S: {source}" if arm == "transfer" else arm
    return f"{name} (n={len(result.arms[arm])} seeds)"


def _classes(target: str) -> int:
    """Return the number of classes of a registered target (0 when it is not registered)."""
    from transfer_lab.data.tasks import TASKS

    return TASKS[target].num_classes if target in TASKS else 0


def plot_comparison(result, path: str | Path | None = None, ax=None):
    """Plot a Comparison: the headline metric against epoch per arm, or bars when runs have
    one evaluation (with the training loss per step beside them); mean ± std over seeds."""
    family, colors = result.task_family, arm_colors(result.arms)
    name = family.columns[result.metric]
    trained = {arm: runs for arm, runs in result.arms.items() if runs[0].get("train_loss")}
    if trained and all(len(r["curve"]) > 1 for runs in trained.values() for r in runs):
        fig, ax = _axes(ax)
        for arm, runs in result.arms.items():
            if arm not in trained:  # an arm without epochs (bag of words, a prompt): its level
                ax.axhline(np.mean([r[result.metric] for r in runs]), color=colors[arm],
                           ls="--", lw=1.2, label=_label(result, arm))
                continue
            epochs = [p["epoch"] for p in runs[0]["curve"]]
            values = [[p[result.metric] for p in r["curve"]] for r in runs]
            plot_mean_std(ax, epochs, values, _label(result, arm), colors[arm])
        classes = _classes(result.target) if family.name == "classification" else 0
        if classes:
            ax.axhline(1 / classes, color="k", lw=0.8, ls=":", label=f"chance ({classes} classes)")
        ax.set(xlabel="epoch of target fine-tuning", ylabel=f"test {name}",
               title=f"{result.target}: {result.labels} {family.unit}, θ_S from "
                     f"{result.source}")
        return finish(fig, path, [ax])
    if ax is None:
        import matplotlib.pyplot as plt

        fig, (loss_ax, ax) = plt.subplots(1, 2, figsize=(10, 3.8))
        for arm, runs in trained.items():
            losses = np.array([r["train_loss"] for r in runs])
            plot_mean_std(loss_ax, np.arange(1, losses.shape[1] + 1), losses,
                          _label(result, arm), colors[arm], marker="")
        loss_ax.set(xlabel="training step", ylabel="training loss (cross-entropy)",
                    yscale="log", title="Training loss")
        legend = [loss_ax, ax]
    else:
        fig, legend = ax.figure, [ax]
    metrics = list(family.columns)
    width = 0.8 / len(result.arms)
    for i, (arm, runs) in enumerate(result.arms.items()):
        for j, metric in enumerate(metrics):
            values = [r[metric] for r in runs]
            x = j + (i - (len(result.arms) - 1) / 2) * width
            ax.bar(x, np.mean(values), width * 0.9, yerr=sample_std(values), capsize=3,
                   color=colors[arm], label=_label(result, arm) if j == 0 else None)
            ax.scatter([x] * len(values), values, color="black", s=8, zorder=3)
    top = 100 if family.points == 1 else 1
    ax.set_xticks(range(len(metrics)), [family.columns[m] for m in metrics])
    ax.set(xlabel="metric (bar: mean ± std over seeds; dot: one seed)",
           ylabel=f"test score (0–{top})", ylim=(0, top),
           title=f"{result.target}: {result.labels} {family.unit}, "
                 f"{result.test_examples} test")
    return finish(fig, path, legend)
