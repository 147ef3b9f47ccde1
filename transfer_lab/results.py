"""Results: one fine-tuning `Run` and the `Comparison` of arms on one target (every family).

A comparison holds, per arm, one plain dict per seed with the family's metrics, the headline
metric again under `score` (so tools read any family the same way), the run's seconds, its
evaluation curve and its training loss. It prints as a table, plots, and saves to JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transfer_lab import stats
from transfer_lab.families import TaskFamily, get_family
from transfer_lab.training.checkpoint import write_atomically
from transfer_lab.training.loop import History


def ci95(values, bounds: tuple[float, float] | None = None) -> tuple[float | None, float | None]:
    """Return the 95 % t-interval of the mean of `values`, cut to `bounds`; (None, None) for one.

    A thin name over `transfer_lab.stats.t_interval`, which the chapters import from here.
    """
    return stats.t_interval(values, bounds=bounds)


def _number(value: float | None, spec: str) -> str:
    """Return `value` formatted by `spec`, or a dash in the same width where it is undefined."""
    return format("–", spec.split(".")[0]) if value is None else format(value, spec)


@dataclass
class Run:
    """One fine-tuning run on the target: its arm, seed, final metrics and history."""

    arm: str
    seed: int
    metrics: dict
    history: History
    family: str = "classification"
    strategy: str = "full"  # how θ_T(0) was fine-tuned (`training.strategies`)
    trained: int | None = None  # weights the optimizer updates
    total: int | None = None  # weights of the model

    def to_dict(self) -> dict:
        """Return the run as the results file stores it (numbers only in the curve; `score` is
        None for a run that was not evaluated)."""
        metric = get_family(self.family).metric
        curve = [{k: v for k, v in e.items() if k != "step" and isinstance(v, (int, float))}
                 for e in self.history.evals]
        return {"seed": self.seed, **self.metrics, "score": self.metrics.get(metric),
                "seconds": self.history.seconds, "strategy": self.strategy,
                "trained": self.trained, "total": self.total, "curve": curve,
                "train_loss": [s["loss"] for s in self.history.steps]}


@dataclass
class Comparison:
    """Arms fine-tuned on one target with the same data, steps and seeds: metrics per seed."""

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
    family: str = "classification"
    models: dict[str, list] = field(default_factory=dict, repr=False)  # θ_T* if kept

    @property
    def task_family(self) -> TaskFamily:
        """Return the target's task family (its metric, columns and unit)."""
        return get_family(self.family)

    @property
    def metric(self) -> str:
        """Return the name of the headline metric."""
        return self.task_family.metric

    def mean_std(self, arm: str, metric: str | None = None) -> tuple[float, float | None]:
        """Return the mean and sample standard deviation (n − 1; None for one seed) of a metric.

        The same std as `summary()` (results.json) and the figure's band: `stats.sample_std`.
        """
        cell = stats.summarize([r[metric or self.metric] for r in self.arms[arm]])
        return cell["mean"], cell["std"]

    def difference(self, metric: str | None = None, baseline: str = "scratch",
                   arm: str = "transfer") -> float:
        """Return the mean metric of `arm` minus that of `baseline`."""
        return self.mean_std(arm, metric)[0] - self.mean_std(baseline, metric)[0]

    @property
    def gain(self) -> float:
        """Return the mean headline metric of transfer minus that of scratch."""
        return self.difference()

    def summary(self, metric: str = "score") -> dict:
        """Return {arm: {metric: {"mean", "std", "ci95"}}} over seeds (std with n − 1; None and
        [None, None] for one seed: saved as null).

        The intervals of the family's metrics are cut to their range (`TaskFamily.bounds`).
        """
        kind = self.task_family
        bounds = kind.bounds if metric == "score" or metric in kind.columns else None
        out = {}
        for arm, runs in self.arms.items():
            if not runs:  # not run yet (a comparison in progress)
                continue
            cell = stats.summarize([r[metric] for r in runs], bounds)
            out[arm] = {metric: {k: cell[k] for k in ("mean", "std", "ci95")}}
        return out

    @property
    def reference(self) -> str:
        """Return the arm the others are compared with: `transfer` (θ_S from a source task), or
        `pretrained` where no source task was trained."""
        return "transfer" if "transfer" in self.arms or "pretrained" not in self.arms \
            else "pretrained"

    def differences(self, metric: str = "score", arm: str | None = None) -> dict:
        """Return {"<arm>-<baseline>": {"mean", "ci95"}}: paired by seed, for every other arm
        (`arm` defaults to the reference arm)."""
        arm = arm or self.reference
        if arm not in self.arms:
            return {}
        mine = {r["seed"]: r[metric] for r in self.arms[arm]}
        out = {}
        for baseline, runs in self.arms.items():
            paired = [r for r in runs if r["seed"] in mine]
            if baseline != arm and paired:
                diff = stats.paired_difference([mine[r["seed"]] for r in paired],
                                               [r[metric] for r in paired])
                out[f"{arm}-{baseline}"] = {"mean": diff["mean"], "ci95": diff["ci95"],
                                            "seeds": diff["n"]}
        return out

    def verdict(self, baseline: str, arm: str | None = None, metric: str = "score") -> str:
        """Return "better than", "worse than" or "indistinguishable from": where the paired
        95 % CI of `arm` − `baseline` lies (for prose that must not claim more than it shows)."""
        arm = arm or self.reference
        diff = self.differences(metric, arm).get(f"{arm}-{baseline}")
        if diff is None or None in diff["ci95"]:
            return "indistinguishable from"
        lo, hi = diff["ci95"]
        return "better than" if lo > 0 else "worse than" if hi < 0 else "indistinguishable from"

    def table(self) -> str:
        """Return a plain-text table: each arm's metrics as mean ± std over seeds."""
        kind = self.task_family
        start = (f"the pretrained {self.model}" if self.init == "pretrained"
                 else f"{self.source} ({self.model}, {self.init})")
        title = (f"{self.target} from {start}; {kind.unit}: {self.labels}; seeds: {self.seeds}; "
                 f"test examples: {self.test_examples}")
        digits = 3 if kind.points > 1 else 1
        width = max(16, *(len(a) + 2 for a in self.arms))
        lines = [title, f"{'arm':<{width}}" + "".join(f"{c:>18}" for c in kind.columns.values())]
        for arm in self.arms:
            cells = (self.mean_std(arm, k) if self.arms[arm] else (None, None)
                     for k in kind.columns)
            lines.append(f"{arm:<{width}}" + "".join(
                f"{_number(m, f'>11.{digits}f')} ± {_number(s, f'<4.{digits}f')}"
                for m, s in cells))
        name, points = kind.columns[self.metric], kind.points
        ref = self.reference
        lines.append(f"{name}, mean and 95 % CI over seeds; {ref} − arm, paired by seed "
                     f"({'points' if points > 1 else 'score'}):")
        summary, differences = self.summary(self.metric), self.differences(self.metric)
        for arm, cell in summary.items():
            lo, hi = cell[self.metric]["ci95"]
            mean = cell[self.metric]["mean"]
            if lo is None:
                lines.append(f"  {arm:<{width}}{mean:.{digits}f} (one seed: no interval)")
                continue
            line = f"  {arm:<{width}}{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            diff = differences.get(f"{ref}-{arm}")
            if diff and None not in diff["ci95"]:
                d_lo, d_hi = (points * v for v in diff["ci95"])
                verdict = {"better than": f"{ref} better", "worse than": f"{ref} worse"}.get(
                    self.verdict(arm, metric=self.metric), "indistinguishable")
                line += (f"   {ref} − {arm}: {points * diff['mean']:+.1f} "
                         f"[{d_lo:+.1f}, {d_hi:+.1f}] ({verdict})")
            lines.append(line)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Return the comparison as a JSON-ready dict (the results.json schema)."""
        keys = ("source", "target", "family", "model", "init", "labels", "seeds", "arms",
                "theta_S", "config", "seconds", "test_examples")
        return {**{k: getattr(self, k) for k in keys}, "metric": self.metric,
                "summary": self.summary(), "differences": self.differences()}

    def to_json(self, path: str | Path) -> Path:
        """Write the comparison to a strict JSON file (null, never NaN) and return its path."""
        path = Path(path)
        write_atomically(path, json.dumps(self.to_dict(), indent=2, allow_nan=False))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> Comparison:
        """Read a comparison written by `to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> Comparison:
        """Return the comparison of a `to_dict()` (what it derives is computed again)."""
        derived = ("metric", "summary", "differences")
        return cls(**{k: v for k, v in data.items() if k not in derived})

    def plot(self, path: str | Path | None = None, ax=None):
        """Plot the headline metric per arm (against epoch, or bars); save it if `path`."""
        from transfer_lab.plots import plot_comparison

        return plot_comparison(self, path=path, ax=ax)
