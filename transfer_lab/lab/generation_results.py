"""SmolLM2's generation results: benchmarks/results/generation.json as tables (chapter-only).

Chapters 5.3 and 5.4 run their encoder models live and read SmolLM2's runs (three seeds, LoRA
over thousands of pairs: an hour on 2 cores) from the file `python -m benchmarks.generation`
writes. `comparison` gives a part back as a `Comparison`; `recipe` and `decodings` as tables.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transfer_lab.lab import stored
from transfer_lab.results import Comparison
from transfer_lab.validate import InputError


def load(path: str | Path | None = None) -> dict:
    """Return the results file: the book's (`stored.path`), or the one at `path`."""
    return stored.load("generation.json", path)


def _part(results: dict, name: str) -> dict:
    """Return one part, or one error naming the command that writes it."""
    if name not in results["parts"]:
        raise InputError(f"generation.json has no {name!r} part; run: "
                         f"python -m benchmarks.generation --part {name}")
    return results["parts"][name]


def provenance(results: dict, name: str) -> str:
    """Return where a part's numbers come from: its command, date, seeds, test rows and time."""
    part = _part(results, name)
    fields = [part["date"], f"seeds: {part['seeds']}"]
    if "test_examples" in part["results"]:
        fields.append(f"test rows: {part['results']['test_examples']}")
    fields.append(f"{part['seconds'] / 60:.0f} min; cores: {results['machine']['cores']}")
    return f"{part['command']} ({'; '.join(fields)})"


def comparison(results: dict, name: str) -> Comparison:
    """Return the arms of part `name` ("translation" or "qa") as a Comparison."""
    kept = {k: v for k, v in _part(results, name)["results"].items()
            if k not in ("recipe", "decodings")}
    return Comparison.from_dict(kept)


def recipe(results: dict, task: str) -> pd.DataFrame:
    """Return the validation score of each learning rate after each epoch on a task."""
    value = _part(results, "recipe")["results"][task]
    return pd.DataFrame([{"lr": run["lr"], "epoch": e["epoch"], value["metric"]: e[value["metric"]]}
                         for run in value["runs"] for e in run["epochs"]])


def chosen(results: dict, task: str) -> dict:
    """Return the recipe chosen on validation for a task: {"lr", "epochs"}."""
    return _part(results, "recipe")["results"][task]["chosen"]


def decodings(results: dict) -> pd.DataFrame:
    """Return each model × decoding of the translation part: BLEU, chrF and seconds."""
    cells = _part(results, "translation")["results"]["decodings"]
    return pd.DataFrame([{"model": key.split("/")[0], "decoding": key.split("/")[1],
                          **{k: cell[k] for k in ("bleu", "chrf", "exact_match", "seconds")}}
                         for key, cell in cells.items()])
