"""What every benchmark shares: workers in fresh processes, peak RSS, medians, JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    """Return the facts that make a measurement comparable: CPU, threads, versions."""
    import transformers

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "date": time.strftime("%Y-%m-%d")}


def worker(module: str, **kwargs) -> dict:
    """Run `python -m module --worker JSON` in a fresh process and return the JSON it prints."""
    return workers(module, [kwargs])[0]


def workers(module: str, jobs: list[dict]) -> list[dict]:
    """Run one fresh `python -m module --worker JSON` process per job, all at once; return each
    one's JSON. For measurements that contention cannot change, such as peak memory."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen([sys.executable, "-m", module, "--worker", json.dumps(job)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for job in jobs]
    out = []
    for job, proc in zip(jobs, procs, strict=True):
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{module} worker {job} failed:\n{stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def median(values: list[float]) -> float:
    """Return the median of a list of numbers."""
    return float(statistics.median(values))


def save(name: str, result: dict, quiet: bool = False) -> Path:
    """Write a benchmark's result (with the machine's facts) to benchmarks/results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2))
    if not quiet:
        print(f"wrote {path}")
    return path


def is_worker() -> dict | None:
    """Return the worker's arguments when this process was started by `worker`."""
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return json.loads(sys.argv[2])
    return None
