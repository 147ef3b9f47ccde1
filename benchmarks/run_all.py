"""Run every benchmark once (`make bench`), timing each, and print where the results went."""

import time

from . import book, efficiency, padding, threads, throughput
from .common import save

BENCHMARKS = {"throughput": throughput.main, "padding": padding.main, "threads": threads.main,
              "efficiency": efficiency.main, "book": book.main}


def main() -> dict:
    """Run throughput, padding, threads, efficiency and the book; save the seconds of each."""
    seconds = {}
    for name, run in BENCHMARKS.items():
        start = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - start
    total = sum(seconds.values())
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
          + f"; total {total:.0f} (goal <= 600)")
    save("suite", {"seconds": seconds, "total_seconds": total})
    return seconds


if __name__ == "__main__":
    main()
