"""Start-up: `transfer-lab --help` against `python -c "import torch"`, side by side.

    python -m benchmarks.startup

Each command runs in a fresh process, alternating, after one untimed run of each (a warm file
cache); reported are the median wall seconds of each and their ratio (goal <= 0.3). The help,
`tasks` and `models` import neither torch nor transformers, so they answer at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .common import median, save

GOAL = 0.3  # `transfer-lab --help` takes at most this share of `import torch`'s time


def cli_command() -> list[str]:
    """Return the installed `transfer-lab` script beside this Python, or `python -m` it."""
    script = Path(sys.executable).with_name("transfer-lab")
    if script.is_file():
        return [str(script)]
    found = shutil.which("transfer-lab")
    return [found] if found else [sys.executable, "-m", "transfer_lab.cli"]


def seconds(command: list[str]) -> float:
    """Return the wall seconds of one run of `command` in a fresh process (it must succeed)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main(repeats: int = 7) -> dict:
    """Time both commands, alternating; print and save their medians and the ratio."""
    commands = {"help": [*cli_command(), "--help"],
                "import_torch": [sys.executable, "-c", "import torch"]}
    times = {name: [] for name in commands}
    for command in commands.values():  # warm-up, untimed
        seconds(command)
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(seconds(command))
    shown = [Path(commands["help"][0]).name, *commands["help"][1:]]  # no local paths
    result = {"repeats": repeats, "help_command": " ".join(shown),
              "help_seconds": median(times["help"]),
              "import_torch_seconds": median(times["import_torch"]),
              "all_seconds": times, "goal_ratio": GOAL}
    result["ratio"] = result["help_seconds"] / result["import_torch_seconds"]
    print(f"transfer-lab --help {result['help_seconds']:.3f} s, import torch "
          f"{result['import_torch_seconds']:.3f} s (medians of {repeats}): ratio "
          f"{result['ratio']:.2f} (goal <= {GOAL})")
    save("startup", result)
    return result


if __name__ == "__main__":
    main()
