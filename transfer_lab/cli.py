"""The `transfer-lab` command: run the θ_S → θ_T pipeline, list tasks and models (chapter 4)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str):
        """Print one line naming what is wrong, then exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fresh_dir(path: Path) -> Path:
    """Return `path`, or `path-2`, `path-3`, … if it already holds files (never overwrite)."""
    candidate, i = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        i += 1
        candidate = path.with_name(f"{path.name}-{i}")
    return candidate


def cmd_run(args) -> None:
    """Compare scratch and transfer; print the table, write results.json and curves.png."""
    from .config import quiet
    from .pipeline import compare
    from .tasks import get_task

    quiet()
    task = get_task(args.target)
    if args.labels > task.size:
        raise ValueError(f"--labels {args.labels} is more than the {task.size} training "
                         f"examples of {args.target!r}; use at most {task.size}")
    out = _fresh_dir(Path(args.out or f"runs/{args.target}-{args.model}-{args.init}-{args.labels}"))
    result = compare(args.source, args.target, args.model, args.init, args.labels, args.seeds)
    out.mkdir(parents=True, exist_ok=True)
    result.to_json(out / "results.json")
    result.plot(out / "curves.png")
    print(result.table())
    print(f"wrote {out / 'results.json'} and {out / 'curves.png'} ({result.seconds:.0f} s)")


def cmd_tasks(args) -> None:
    """Print the registered tasks."""
    from .tasks import TASKS

    for t in TASKS.values():
        where = "hub, full profile" if t.hub else "offline"
        print(f"{t.name:<28}{t.kind:<16}{len(t.labels)} labels  {t.description} [{where}]")


def cmd_models(args) -> None:
    """Print the backbones."""
    from .models import BACKBONES

    for b in BACKBONES.values():
        note = " [hub, full profile]" if b.hub else ""
        note += " [synthetic world only]" if b.world_only else ""
        print(f"{b.name:<36}{b.description}{note}")


def parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    from .models import BACKBONES
    from .pipeline import INITS
    from .tasks import TASKS

    p = _Parser(prog="transfer-lab", description="Transfer learning for language models, "
                "measured: train θ_S on a source, fine-tune on a target, compare with scratch.")
    p.add_argument("--version", action="version", version=f"transfer-lab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="scratch vs transfer on a target task")
    run.add_argument("--source", default="product_sentiment", choices=list(TASKS), metavar="S",
                     help="source task for θ_S (default: %(default)s; see `transfer-lab tasks`)")
    run.add_argument("--target", default="film_sentiment", choices=list(TASKS), metavar="T",
                     help="target task (default: %(default)s)")
    run.add_argument("--model", default="tiny", choices=list(BACKBONES), metavar="M",
                     help="backbone (default: %(default)s; see `transfer-lab models`)")
    run.add_argument("--init", default="supervised", choices=INITS,
                     help="how θ_S is made (default: %(default)s)")
    run.add_argument("--labels", type=_positive, default=64, metavar="N",
                     help="target training labels (default: %(default)s)")
    run.add_argument("--seeds", type=_positive, default=3, metavar="K",
                     help="seeds per arm (default: %(default)s)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: runs/…; an existing "
                     "folder with files is never overwritten: a new one is made beside it)")
    run.set_defaults(func=cmd_run)
    sub.add_parser("tasks", help="list the tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("models", help="list the backbones").set_defaults(func=cmd_models)
    return p


def _positive(text: str) -> int:
    """Parse a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors print one line and return 2."""
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, RuntimeError, FileExistsError) as err:
        print(f"transfer-lab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
