"""The book's stored benchmark results (benchmarks/results/*.json), wherever the book runs.

In a clone of the repository they lie next to the package. Where the package was installed
without them (Colab installs it from git into site-packages), the file is fetched once from the
repository into the cache; offline, the error says where it was looked for.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from transfer_lab.config import cache_dir
from transfer_lab.validate import InputError

REPOSITORY = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
RAW = "https://raw.githubusercontent.com/transfer-lab/transfer-lab/main/benchmarks/results/"


def path(name: str) -> Path:
    """Return the results file `name` ("real.json"): the repository's, else a cached copy,
    else one fetched from the repository into the cache."""
    local = REPOSITORY / name
    if local.exists():
        return local
    cached = cache_dir() / "results" / name
    if cached.exists():
        return cached
    command = f"python -m benchmarks.{Path(name).stem}"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise InputError(f"no stored results {name} at {local} (offline: not fetched); "
                         f"run: {command}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(RAW + name, timeout=30) as response:
            text = response.read().decode()
        json.loads(text)  # a page of HTML is not results
    except (OSError, ValueError) as error:
        raise InputError(f"no stored results {name} at {local}, and fetching {RAW}{name} "
                         f"failed ({error}); clone the repository, or run: {command}") from None
    cached.with_suffix(".part").write_text(text)
    cached.with_suffix(".part").replace(cached)
    return cached


def load(name: str, file: str | Path | None = None) -> dict:
    """Return the stored results file `name` as a dict (see `path`), or the results `file`
    given instead (a missing one is one error naming the benchmark that writes it)."""
    if file is None:
        return json.loads(path(name).read_text())
    file = Path(file)
    if not file.exists():
        raise InputError(f"no results at {file}; run: python -m benchmarks.{Path(name).stem}")
    return json.loads(file.read_text())
