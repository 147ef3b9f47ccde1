"""Helpers shared by test modules."""

import subprocess
import sys


def without_seconds(value):
    """Return a results dict without its timing fields (keys named "seconds")."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run the command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "transfer_lab.cli", *args],
                          capture_output=True, text=True, timeout=600)


def main_exit(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the command in this process; return (exit status, stdout, stderr)."""
    from transfer_lab.cli import main

    try:
        status = main(args)
    except SystemExit as stop:  # argparse's own errors exit from parse_args
        status = stop.code
    out = capsys.readouterr()
    return status, out.out, out.err
