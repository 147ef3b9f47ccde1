"""The real-data thread's stored results: benchmarks/results/real.json as tables (chapter-only).

The book's chapters compute one comparison on the real review sentences live and read the rest
(three seeds, every test sentence, hours on 2 cores) from the file `python -m benchmarks.real`
writes. These functions turn its parts into tables with one row per cell: `mean`, `lo` and `hi`
(the 95 % CI over seeds) as accuracies in [0, 1]; `provenance` is the line a chapter prints
beside them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transfer_lab.lab import stored
from transfer_lab.validate import InputError


def load(path: str | Path | None = None) -> dict:
    """Return the results file: the book's (`stored.path`), or the one at `path`."""
    return stored.load("real.json", path)


def _part(results: dict, name: str) -> dict:
    """Return one part's results, or one error naming the command that writes it (a part
    missing or cut short)."""
    part = results["parts"].get(name)
    if part is None or not part.get("complete"):
        state = "no" if part is None else "a cut-short"
        raise InputError(f"real.json has {state} {name!r} part; run: "
                         f"python -m benchmarks.real --part {name}")
    return part


def provenance(results: dict, name: str) -> str:
    """Return where a part's numbers come from: the command that makes the whole part again,
    its date, seeds, test sentences (where it scores any) and time."""
    part = _part(results, name)
    first = next(iter(part["results"].values()))
    date = part.get("date", results["date"])  # the part's own date; older files: the file's
    fields = [date, f"seeds: {part['seeds']}"]
    if "test_examples" in first:  # `selection` scores no test sentence
        fields.append(f"test sentences: {first['test_examples']}")
    fields.append(f"{part['seconds'] / 60:.0f} min of runs; cores: {results['machine']['cores']}")
    return f"python -m benchmarks.real --part {name} ({'; '.join(fields)})"


def _cell(cell: dict) -> dict:
    """Return a summary or difference cell as mean, lo, hi."""
    lo, hi = cell["ci95"]
    return {"mean": cell["mean"], "lo": lo, "hi": hi}


def curve(results: dict) -> pd.DataFrame:
    """Return the label curve on film sentences: one row per budget and arm."""
    return pd.DataFrame([{"labels": int(labels), "arm": arm, **_cell(cell["score"])}
                         for labels, c in _part(results, "curve")["results"].items()
                         for arm, cell in c["summary"].items()])


def curve_gains(results: dict) -> pd.DataFrame:
    """Return the curve's paired differences (transfer − pretrained, pretrained − scratch)."""
    return pd.DataFrame([{"labels": int(labels), "difference": name, **_cell(cell)}
                         for labels, c in _part(results, "curve")["results"].items()
                         for name, cell in c["paired"].items()])


def matrix(results: dict) -> pd.DataFrame:
    """Return the cross-domain matrix: one row per source → target at 64 labels, with the
    target's pretrained arm, the transfer arm, their paired difference (`gain_*`) and the
    bag-of-words model trained on the source alone."""
    rows = []
    for target, c in _part(results, "matrix")["results"].items():
        pretrained = c["summary"]["pretrained"]["score"]["mean"]
        for arm, gain in c["paired"].items():
            source = arm.split("-")[0].removeprefix("from_")
            transfer = _cell(c["summary"][arm.split("-")[0]]["score"])
            rows.append({"source": source, "target": target, "pretrained": pretrained,
                         "transfer": transfer["mean"],
                         **{f"gain_{k}": v for k, v in _cell(gain).items()},
                         "bow_source": c["bow_source"][f"from_{source}"]["mean"]})
    return pd.DataFrame(rows)


def decoder(results: dict) -> pd.DataFrame:
    """Return SmolLM2's arms and MiniLM's pretrained arm on film sentences: one row per budget
    and arm, with the mean seconds of a run."""
    rows = []
    for labels, c in _part(results, "decoder")["results"].items():
        for arm, cell in c["summary"].items():
            rows.append({"labels": int(labels), "model": "smollm2", "arm": arm,
                         **_cell(cell["score"]), "seconds": c["seconds_per_run"][arm]})
        minilm = c["minilm_pretrained"]
        rows.append({"labels": int(labels), "model": "minilm", "arm": "pretrained",
                     **_cell(minilm["score"]), "seconds": minilm["seconds_per_run"]})
    return pd.DataFrame(rows)


def selection(results: dict) -> pd.DataFrame:
    """Return each target's candidate starts (`pretrained`: MiniLM's own weights; a source
    domain: its θ_S) with what is known before fine-tuning (`logme`, the mean over seeds of
    LogME on the 64 labelled rows; `overlap`, the source's vocabulary overlap) beside what
    fine-tuning then measured (`accuracy`, from the matrix)."""
    measured = _part(results, "matrix")["results"]
    rows = []
    for target, cells in _part(results, "selection")["results"].items():
        for arm, cell in cells.items():
            rows.append({"target": target, "start": arm.removeprefix("from_"),
                         "logme": sum(cell["logme"]) / len(cell["logme"]),
                         "overlap": cell.get("overlap"),
                         "accuracy": measured[target]["summary"][arm]["score"]["mean"]})
    return pd.DataFrame(rows)
