"""Run every benchmark once (`make bench`), timing each, and print where the results went.

    python -m benchmarks.run_all            # the book into a temp folder, from a fresh θ_S cache
    python -m benchmarks.run_all --inplace  # authors: also store the book's new outputs
"""

import sys
import time

from . import book, efficiency, llm, padding, startup, threads, throughput
from .common import save

BENCHMARKS = {"startup": startup.main, "throughput": throughput.main, "padding": padding.main,
              "threads": threads.main, "efficiency": efficiency.main, "llm": llm.main,
              "book": book.main}


def main(inplace: bool = False) -> dict:
    """Run startup, throughput, padding, threads, efficiency, the LLM and the book; save their
    seconds.

    The seconds are saved after every benchmark, so the book's appendix, which runs inside the
    last one, shows this run's figures (with the book so far).
    """
    seconds = {}
    for name, run in BENCHMARKS.items():
        start = time.perf_counter()
        run(inplace=inplace) if name == "book" else run()
        seconds[name] = time.perf_counter() - start
        save("suite", {"seconds": seconds, "total_seconds": sum(seconds.values()),
                       "complete": len(seconds) == len(BENCHMARKS)}, quiet=True)
    total = sum(seconds.values())
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
          + f"; total {total:.0f} (goal <= 600)")
    return seconds


if __name__ == "__main__":
    main(inplace="--inplace" in sys.argv)
