"""Matplotlib figures the book uses (every chapter); nothing here trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"scratch": "tab:gray", "transfer": "tab:blue"}


def _axes(ax):
    """Return (figure, axes), making a new figure when `ax` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
        return fig, ax
    return ax.figure, ax


def plot_curves(result, path: str | Path | None = None, ax=None, metric: str = "accuracy"):
    """Plot a Comparison's test metric against epoch per arm, mean ± std over seeds."""
    fig, ax = _axes(ax)
    for arm, runs in result.arms.items():
        epochs = [p["epoch"] for p in runs[0]["curve"]]
        values = np.array([[p[metric] for p in r["curve"]] for r in runs])
        mean, std = values.mean(0), values.std(0)
        color = COLORS.get(arm)
        ax.plot(epochs, mean, marker="o", color=color, label=f"{arm} (n={len(runs)} seeds)")
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    ax.axhline(1 / 2, color="k", lw=0.8, ls=":", label="chance (2 classes)")
    ax.set(xlabel="epoch of target fine-tuning", ylabel=f"test {metric}",
           title=f"{result.target}: {result.labels} labels, θ_S from {result.source}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_mean_std(ax, x, runs: np.ndarray, label: str, color=None, marker: str = "o"):
    """Draw the mean of `runs` (seeds × points) against x with a ±std band."""
    runs = np.asarray(runs, dtype=float)
    mean, std = runs.mean(0), runs.std(0)
    ax.plot(x, mean, marker=marker, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=color)
    return ax
