"""Execute every notebook of the book (quick profile): wall time and peak RSS per notebook.

    python -m benchmarks.book            # fresh θ_S cache, outputs into a temp folder
    python -m benchmarks.book --jobs 1   # one notebook at a time, with every core's threads
    python -m benchmarks.book --inplace  # authors: also store the new outputs in the book

Goals (the developers' guide): each notebook ≤ 120 s on 2 cores, the decoder-LLM chapters ≤ 180
s; peak memory ≤ 3 GB for the encoder chapters (SmolLM2's have no goal). Notebooks run into a
temp copy (the book's stored outputs are not touched) unless --inplace; θ_S checkpoints come
from a fresh cache (--warm: the usual one), so the first notebook that needs one pays for
training it, as in CI. Like `make test`, the chapters run side by side in one kernel per core
(up to 4), each with its share of the threads (the threads benchmark measures why). The chapters
are split between the kernels by the last run's times, so that the kernels finish together, and
each kernel runs its share in reading order, so that, as on a reader's first pass, a θ_S is as a
rule trained by the first chapter that needs it. A chapter that needs a θ_S or a curve run that
another one is making waits for it (the cache's lock) and reads it. The appendix runs last,
alone, so that it shows the whole book. The dense-matmul speed is measured before and after
(`matmul_gflops`): the same code took 1.2× longer on a day this machine's matmul was half as
fast, so times of two runs compare only beside it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import nbformat

from . import common
from .common import save
from .efficiency import matmul_flops

BOOK = Path(__file__).resolve().parents[1] / "book"
GOAL_S, LLM_GOAL_S = 120, 180
LLM_CHAPTERS = ("04b_decoder.ipynb", "04c_instruction.ipynb")
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


def run(nb: Path, out_dir: Path, env: dict, start: float | None = None) -> dict:
    """Execute one notebook in a fresh kernel, save it into out_dir; return time, RSS, status
    and when it started (seconds after `start`, a `time.perf_counter()`).

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
    began = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        error = str(err)[-500:]
    seconds = time.perf_counter() - began
    probe = notebook.cells.pop()
    printed = "".join(o.get("text", "") for o in probe.get("outputs", [])
                      if o.get("name") == "stdout").split()
    rss = float(printed[-1]) if printed and not error else float("nan")
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / nb.name)
    return {"notebook": str(nb.relative_to(BOOK)), "seconds": seconds, "peak_rss_mb": rss,
            "start": 0.0 if start is None else began - start,
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


def default_jobs() -> int:
    """Return how many notebooks run at once: one per core, up to 4 (as `make test` does)."""
    return min(os.cpu_count() or 1, 4)


def lanes(chapters: list[Path], jobs: int) -> list[list[Path]]:
    """Split the chapters between `jobs` kernels so that each gets about the same time (by the
    last run's times; longest first to the least loaded), each kernel in reading order."""
    path = common.RESULTS / "book.json"
    last = ({r["notebook"]: r["seconds"] for r in json.loads(path.read_text())["notebooks"]}
            if path.exists() else {})
    typical = sum(last.values()) / len(last) if last else 1.0  # for a chapter not measured yet
    seconds = {nb: last.get(str(nb.relative_to(BOOK)), typical) for nb in chapters}
    split: list[list[Path]] = [[] for _ in range(jobs)]
    for nb in sorted(chapters, key=lambda nb: -seconds[nb]):
        min(split, key=lambda lane: sum(seconds[n] for n in lane)).append(nb)
    return [sorted(lane, key=chapters.index) for lane in split if lane]


def main(fresh_cache: bool = True, inplace: bool = False, jobs: int | None = None) -> dict:
    """Run the whole book once and print and save the table (after every notebook).

    Saving as it goes keeps what was measured if the run is cut short, and lets the appendix,
    which runs last, show this run's chapters.
    """
    jobs = jobs or default_jobs()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    chapters = [nb for nb in notebooks() if not nb.name.startswith("appendix")]
    last = [nb for nb in notebooks() if nb not in chapters]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFER_LAB_PROFILE": "quick", "OMP_NUM_THREADS": str(threads)}
        if fresh_cache:
            env["TRANSFER_LAB_CACHE"] = str(Path(tmp) / "cache")
        book = Book(jobs, threads)
        out = None if inplace else Path(tmp) / "out"

        def play(lane: int, playlist: list[Path]) -> None:
            for nb in playlist:
                book.add(run(nb, out or nb.parent, env, start=book.start), lane)

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(play, range(jobs), lanes(chapters, jobs)))
        for nb in last:
            play(0, [nb])
    book.measure_roof()
    r = book.result()
    over = [row["notebook"] for row in r["notebooks"] if row["seconds"] > row["goal_seconds"]]
    print(f"{'all (' + str(jobs) + ' at a time)':<40}{r['total_seconds']:>7.1f} s"
          f"{r['peak_rss_mb']:>8.0f} MiB; the notebooks' times add up to "
          f"{r['notebook_seconds']:.0f} s; over their goal ({GOAL_S} s, LLM chapters "
          f"{LLM_GOAL_S} s): {', '.join(over) or 'none'}")
    return book.save()


class Book:
    """The rows measured so far, printed and saved (results/book.json) as each one arrives."""

    def __init__(self, jobs: int, threads: int):
        self.jobs, self.threads, self.rows = jobs, threads, []
        self.roof: list[float] = []
        self.measure_roof()
        self.start, self.lock = time.perf_counter(), threading.Lock()

    def measure_roof(self) -> None:
        """Keep the machine's dense-matmul FLOP/s now (before and after the run)."""
        self.roof.append(matmul_flops())

    def add(self, row: dict, lane: int) -> None:
        """Keep one notebook's row (in reading order), print it and save the rows so far."""
        with self.lock:
            self.rows.append({**row, "lane": lane, "goal_seconds": goal_seconds(row)})
            self.rows.sort(key=lambda r: r["notebook"])
            flag = "" if row["ok"] else "  FAILED"
            print(f"{row['notebook']:<40}{row['seconds']:>7.1f} s{row['peak_rss_mb']:>8.0f} MiB"
                  f"{flag}  " + "; ".join(f"[{c['cell']}] {c['seconds']:.0f} s"
                                        for c in row["slowest_cells"]), flush=True)
            self.save(quiet=True)

    def result(self) -> dict:
        """Return the rows, the wall time so far, the sum of the notebooks' times, peak memory."""
        rows = self.rows
        return {"notebooks": rows, "jobs": self.jobs, "threads_per_kernel": self.threads,
                "total_seconds": time.perf_counter() - self.start,
                "notebook_seconds": sum(r["seconds"] for r in rows),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
                "peak_rss_side_by_side_mb": side_by_side_peak(rows),
                "matmul_gflops": [round(flops / 1e9, 1) for flops in self.roof]}

    def save(self, quiet: bool = False) -> dict:
        """Write the result so far to results/book.json and return it."""
        result = self.result()
        save("book", result, quiet=quiet)
        return result


def goal_seconds(row: dict) -> int:
    """Return a notebook's time goal: more for the decoder-LLM chapters."""
    return LLM_GOAL_S if Path(row["notebook"]).name in LLM_CHAPTERS else GOAL_S


def side_by_side_peak(rows: list[dict]) -> float:
    """Return the most memory the kernels running at one time could hold together: at each
    notebook's start, the sum of the peaks of the notebooks running then (an upper bound)."""
    def running(t: float) -> list[dict]:
        return [r for r in rows if r["start"] <= t < r["start"] + r["seconds"]]
    return max((sum(r["peak_rss_mb"] for r in running(row["start"])) for row in rows),
               default=float("nan"))


if __name__ == "__main__":
    jobs = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else None
    main(fresh_cache="--warm" not in sys.argv, inplace="--inplace" in sys.argv, jobs=jobs)
