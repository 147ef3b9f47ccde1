"""Run every benchmark once (`make bench`) and print where the results went."""

from . import book, efficiency, padding, threads, throughput


def main() -> None:
    """Run throughput, padding, threads, efficiency and the book, in that order."""
    throughput.main()
    padding.main()
    threads.main()
    efficiency.main()
    book.main()


if __name__ == "__main__":
    main()
