"""Execute every notebook of the book (quick profile): wall time and peak RSS per notebook.

    python -m benchmarks.book            # fresh θ_S cache, outputs into a temp folder
    python -m benchmarks.book --inplace  # authors: also store the new outputs in the book

Goals: each notebook ≤ 90 s, all together ≤ 10 min, peak ≤ 3 GB. Notebooks run into a temp
copy (the book's stored outputs are not touched) unless --inplace; θ_S checkpoints come from a
fresh cache (--warm: the usual one), so the first notebook that needs one pays for training it,
as in CI.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat

from .common import save

BOOK = Path(__file__).resolve().parents[1] / "book"
# Run last in each kernel (and dropped from the saved notebook): the peak memory of the kernel
# or of the largest process it started and waited for (chapter 6 launches workers). The kernel's
# own peak is VmHWM: its ru_maxrss would include the RSS of this process, which forked it.
PEAK = """import pathlib as _p, resource as _r
_hwm = [int(l.split()[1]) for l in _p.Path("/proc/self/status").read_text().splitlines()
        if l.startswith("VmHWM:")] if _p.Path("/proc/self/status").exists() else []
print(max(_hwm + [_r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss]) / 1024)"""


def notebooks() -> list[Path]:
    """Return the book's notebooks in reading order."""
    return sorted(p for p in BOOK.rglob("*.ipynb") if "_build" not in p.parts
                  and ".ipynb_checkpoints" not in p.parts)


def run(nb: Path, out_dir: Path, env: dict) -> dict:
    """Execute one notebook in a fresh kernel, save it into out_dir; return time, RSS, status.

    The kernel starts from this process (as in a running Jupyter), so the time is the kernel's
    start and the notebook's cells, not the start of a converter around them.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(nb, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK))
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(nb.parent)}})
    error = ""
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        error = str(err)[-500:]
    seconds = time.perf_counter() - start
    probe = notebook.cells.pop()
    printed = "".join(o.get("text", "") for o in probe.get("outputs", [])
                      if o.get("name") == "stdout").split()
    rss = float(printed[-1]) if printed and not error else float("nan")
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / nb.name)
    return {"notebook": str(nb.relative_to(BOOK)), "seconds": seconds, "peak_rss_mb": rss,
            "ok": not error, "error": error, "slowest_cells": slowest_cells(notebook)}


def slowest_cells(notebook, top: int = 3) -> list[dict]:
    """Return the notebook's `top` slowest code cells: index, seconds, first line of code."""
    cells = []
    for i, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell["cell_type"] == "code" and "shell.execute_reply" in timing:
            seconds = (_time(timing["shell.execute_reply"])
                       - _time(timing["iopub.execute_input"])).total_seconds()
            code = [line for line in cell["source"].splitlines()
                    if line.strip() and not line.startswith("#")]
            cells.append({"cell": i, "seconds": seconds, "code": (code or [""])[0][:80]})
    return sorted(cells, key=lambda c: -c["seconds"])[:top]


def _time(stamp: str) -> datetime:
    """Return the datetime of a Jupyter timestamp (ISO 8601, Z for UTC)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main(fresh_cache: bool = True, inplace: bool = False) -> dict:
    """Run the whole book once and print and save the table (after every notebook).

    Saving as it goes keeps what was measured if the run is cut short, and lets the appendix,
    which runs last, show this run's chapters.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFER_LAB_PROFILE": "quick"}
        if fresh_cache:
            env["TRANSFER_LAB_CACHE"] = str(Path(tmp) / "cache")
        rows: list[dict] = []
        for nb in notebooks():
            rows.append(run(nb, nb.parent if inplace else Path(tmp) / "out", env))
            r = rows[-1]
            flag = "" if r["ok"] else "  FAILED"
            print(f"{r['notebook']:<40}{r['seconds']:>7.1f} s{r['peak_rss_mb']:>8.0f} MiB{flag}  "
                  + "; ".join(f"[{c['cell']}] {c['seconds']:.0f} s" for c in r["slowest_cells"]))
            result = _save(rows, quiet=True)
    print(f"{'total':<40}{result['total_seconds']:>7.1f} s{result['peak_rss_mb']:>8.0f} MiB "
          "(goals: each <= 90 s, total <= 600 s, peak <= 3072 MiB)")
    return _save(rows)


def _save(rows: list[dict], quiet: bool = False) -> dict:
    """Write the rows so far, their total time and peak memory to results/book.json."""
    result = {"notebooks": rows, "total_seconds": sum(r["seconds"] for r in rows),
              "peak_rss_mb": max(r["peak_rss_mb"] for r in rows)}
    save("book", result, quiet=quiet)
    return result


if __name__ == "__main__":
    main(fresh_cache="--warm" not in sys.argv, inplace="--inplace" in sys.argv)
