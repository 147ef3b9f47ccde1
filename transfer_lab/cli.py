"""The `transfer-lab` command: run the θ_S → θ_T pipeline, list tasks and models (chapter 4).

A mistake in the input (an `InputError`) prints one line, what is wrong and how to fix it, and
exits with status 2 (set TRANSFER_LAB_DEBUG=1 to see the traceback instead); any other error is
a bug or a broken machine and keeps its traceback. A run checkpoints as it goes;
`transfer-lab run --resume --out DIR` continues one that was cut short. `--help`, `tasks` and
`models` import neither torch nor transformers, so they answer at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from transfer_lab import __version__
from transfer_lab.config import INITS, METRICS, MIN_STEPS_PRETRAINED
from transfer_lab.models.registry import BACKBONES
from transfer_lab.validate import InputError

CHECKPOINTS = "checkpoints"  # the run's checkpoints, inside --out, removed when it finishes


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


def _run_dir(args) -> Path:
    """Return the run's folder: a fresh one, or with --resume the --out of the run to continue."""
    if not args.resume:
        default = f"runs/{args.target}-{args.model}-{args.init}-{args.labels or 'all'}"
        return _fresh_dir(Path(args.out or default))
    if not args.out:
        raise InputError("--resume needs --out DIR, the folder of the run to continue")
    out = Path(args.out)
    if (out / "results.json").exists():
        raise InputError(f"{out} holds a finished run (results.json), nothing to resume; run "
                         "without --resume to start a new one")
    if (out / CHECKPOINTS).is_dir():
        print(f"resuming the run in {out}")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not the folder of a transfer-lab run (no {CHECKPOINTS}/); "
                         "check --out, or run without --resume")
    else:
        print(f"nothing to resume in {out}: starting the run there")
    return out


def _user_data(args) -> list:
    """Return the tasks and corpus of --target-file/--source-file/--unlabeled-file (named in
    args.target, args.source, args.unlabeled); pick the model and θ_S that suit them."""
    from transfer_lab.data.userdata import corpus_from_file, task_from_file
    from transfer_lab.models.registry import get_backbone

    if args.target_eval_file and not args.target_file:
        raise InputError("--target-eval-file needs --target-file (the training rows)")
    args.unlabeled = None
    if args.unlabeled_file and not args.target_file:
        raise InputError("--unlabeled-file needs --target-file (the labelled target rows)")
    if args.label_words and not args.target_file:
        raise InputError("--label-words needs --target-file (the labels it names)")
    if not (args.target_file or args.source_file):
        from transfer_lab.pipeline import family_of

        args.model = args.model or "tiny"
        family = family_of(args.target, args.model)
        args.init = args.init or family.init
        args.source = args.source or family.source
        return []
    args.model = args.model or "minilm"
    if get_backbone(args.model).world_only:
        raise InputError(f"model {args.model!r} knows only the synthetic world's words (your texts "
                         "would be mostly [UNK]); use --model minilm for your own data")
    columns = dict(text=args.text_column, label=args.label_column, encoding=args.encoding)
    files = []  # this run's own tasks and corpus: known by name inside `tasks.using(*files)`
    if args.target_file:
        target = task_from_file(args.target_file, eval_path=args.target_eval_file,
                                label_words=args.label_words, **columns)
        files.append(target)
        args.target = target.name
        print(f"target: {target.description.removeprefix('your data: ')}")
        if get_backbone(args.model).decoder:  # the prompt arms answer with the class names
            from transfer_lab.families.causal import check_label_words

            check_label_words(target.classes)
    if args.source_file:
        source = task_from_file(args.source_file, name=f"source-{Path(args.source_file).stem}",
                                held_out=0, **columns)
        files.append(source)
        args.source = source.name
        print(f"source: all {source.size} rows of {args.source_file} train θ_S")
    if args.unlabeled_file:
        corpus = corpus_from_file(args.unlabeled_file, args.text_column, encoding=args.encoding)
        files.append(corpus)
        args.unlabeled = corpus.name
        print(f"dapt: masked-LM training on the {corpus.examples} texts of {args.unlabeled_file}"
              ", then θ_S's recipe from that body")
    args.init = args.init or ("supervised" if args.source_file else "pretrained")
    args.source = args.source or "product_sentiment"
    if args.arms is None and args.unlabeled:  # the family's arms (bow, pretrained...) and dapt
        from transfer_lab.families import family_for

        args.arms = family_for(files[0].family, get_backbone(args.model).decoder).default_arms(
            args.model, args.init)
        args.arms.insert(args.arms.index("transfer") if "transfer" in args.arms else 0, "dapt")
    print(f"θ_S: {'trained on ' + args.source if args.init == 'supervised' else args.init} "
          f"{args.model}; texts longer than {args.max_length or 64} tokens are truncated")
    return files


def cmd_run(args) -> None:
    """Compare scratch and transfer; print the table, write results.json and curves.png."""
    from transfer_lab.config import quiet
    from transfer_lab.data.tasks import using

    quiet()
    with using(*_user_data(args)):  # your files' tasks, by name, for this run only
        _run(args)


def _run(args) -> None:
    """Run the comparison of `cmd_run` once the target and source are known by name."""
    from transfer_lab.data.tasks import get_task
    from transfer_lab.pipeline import Selection, compare, family_of, target_config

    options = {k: v for option in args.option or [] for k, v in option.items()} or None
    if args.labels is None:
        args.labels = family_of(args.target, args.model, options).labels
    args.labels = args.labels or get_task(args.target).size  # `--labels all`
    out = args.out_dir = _run_dir(args)
    config = target_config(args.model, args.target)
    if args.max_length:
        config = config.replace(max_length=args.max_length)
    if args.epochs:
        config = config.replace(epochs=args.epochs, max_steps=None, min_steps=0)  # exactly E
    result = compare(args.target, source=args.source, model=args.model, init=args.init,
                     labels=args.labels, seeds=args.seeds, arms=args.arms, config=config,
                     unlabeled=args.unlabeled, selection=Selection() if args.select else None,
                     checkpoint_dir=out / CHECKPOINTS, checkpoint_every=args.checkpoint_every,
                     resume=args.resume, save=args.save, family_options=options)
    result.to_json(out / "results.json")
    result.plot(out / "curves.png")
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    print(result.table())
    print(f"wrote {out / 'results.json'} and {out / 'curves.png'} ({result.seconds:.0f} s)")
    if args.save:
        print(f"saved θ_T* ({result.reference}, seed 0) in {args.save}; try: transfer-lab "
              f"predict --model {args.save} \"some text\"")


def _texts(args) -> list[str]:
    """Return the texts to classify: the arguments, then a file's lines or text column."""
    texts = list(args.texts)
    if args.file:
        path = Path(args.file)
        if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
            from transfer_lab.data.files import read_rows

            rows = read_rows(path, args.encoding)
            if rows and args.text_column not in rows[0]:
                raise InputError(f"{path.name} has no column {args.text_column!r}; columns found: "
                                 f"{', '.join(rows[0])} (choose one with --text-column)")
            texts += [row[args.text_column] for row in rows]
        elif not path.is_file():
            raise InputError(f"file {str(path)!r} does not exist; check the path")
        else:
            from transfer_lab.data.files import read_text

            texts += [line.strip() for line in read_text(path, args.encoding).splitlines()
                      if line.strip()]
    if not texts:
        raise InputError("no texts to classify; give them as arguments or with --file")
    return texts


def cmd_predict(args) -> None:
    """Print each text's predicted label and the probability of every label."""
    from transfer_lab.config import quiet
    from transfer_lab.predict import predict

    quiet()
    for row in predict(args.model, _texts(args), max_length=args.max_length):
        probs = "  ".join(f"{name} {p:.3f}" for name, p in row["probabilities"].items())
        print(f"{row['label']}\t{probs}\t{row['text']}")


def cmd_tasks(args) -> None:
    """Print the registered tasks with their family and metric (a JSON list with --json)."""
    import json

    from transfer_lab.data.tasks import TASKS  # reads datasets, not torch

    rows = [{"name": t.name, "family": t.family, "metric": METRICS[t.family],
             "classes": list(t.classes), "description": t.description,
             "where": "hub, full profile" if t.hub else "offline"} for t in TASKS.values()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'task':<28}{'family':<22}{'metric':<10}description")
    for r in rows:
        print(f"{r['name']:<28}{r['family']:<22}{r['metric']:<10}{r['description']} "
              f"[{r['where']}]")


def cmd_models(args) -> None:
    """Print the backbones."""
    for b in BACKBONES.values():
        note = " [hub, full profile]" if b.hub else ""
        note += " [synthetic world only]" if b.world_only else ""
        print(f"{b.name:<36}{b.description}{note}")


def parser() -> argparse.ArgumentParser:
    """Return the command-line parser (the task names are read only when a --source or --target
    is checked: `--help` imports no data set library)."""
    p = _Parser(prog="transfer-lab", description="Transfer learning for language models, "
                "measured: train θ_S on a source, fine-tune on a target, compare with scratch.")
    p.add_argument("--version", action="version", version=f"transfer-lab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="scratch vs transfer on a target task")
    run.add_argument("--source", choices=_Names(_sources), metavar="S",
                     help="source task for θ_S, or a corpus with --init mlm (default: the "
                     "target family's, e.g. product_sentiment; see `transfer-lab tasks`)")
    run.add_argument("--target", default="film_sentiment", choices=_Names(_targets), metavar="T",
                     help="target task (default: %(default)s)")
    run.add_argument("--model", choices=list(BACKBONES), metavar="M",
                     help="backbone (default: tiny, or minilm for your own data; see "
                     "`transfer-lab models`)")
    run.add_argument("--init", choices=INITS,
                     help="how θ_S is made (default: the target family's, e.g. supervised; "
                     "pretrained for your own target without --source-file)")
    run.add_argument("--labels", type=_labels, metavar="N|all",
                     help="target training labels (default: the target family's, e.g. 64)")
    data = run.add_argument_group("your own data (CSV, TSV or JSON Lines; see the course page)")
    data.add_argument("--target-file", metavar="FILE", help="target training rows")
    data.add_argument("--target-eval-file", metavar="FILE", help="target test rows (default: a "
                      "seeded, stratified fifth of --target-file is held out)")
    data.add_argument("--source-file", metavar="FILE", help="labelled source rows: θ_S is "
                      "trained on them")
    data.add_argument("--unlabeled-file", metavar="FILE", help="unlabeled text of the target's "
                      "domain (one per line, or the text column of a CSV/TSV/JSONL): the dapt "
                      "arm trains a masked LM on it, then θ_S's source task from that body "
                      "(if any), then fine-tunes")
    _file_options(data)
    data.add_argument("--label-column", default="label", metavar="NAME",
                      help="column of the labels, names or numbers (default: %(default)s)")
    data.add_argument("--label-words", type=_words, metavar="W0,W1,...",
                      help="a word for each label of --target-file, in label order (0, 1, … or "
                      "sorted names), e.g. negative,positive for 0/1: what a decoder LLM answers "
                      "(--model smollm2 needs words, not numbers or codes)")
    run.add_argument("--max-length", type=_positive, metavar="TOKENS",
                     help="texts are truncated to this many tokens (default: the target "
                     "family's recipe, e.g. 64)")
    run.add_argument("--save", metavar="DIR", help="keep the fine-tuned θ_T* (transfer arm, "
                     "seed 0: model and tokenizer) in DIR, for `transfer-lab predict`")
    run.add_argument("--arms", type=_names, metavar="A,B,...",
                     help="arms to compare, e.g. bow,scratch,pretrained,transfer (default: the "
                     "target family's: bow, scratch, pretrained (when θ_S grew from a "
                     "pretrained body), transfer; dapt too with --unlabeled-file)")
    run.add_argument("--option", type=_option, action="append", metavar="KEY=VALUE",
                     help="an option of the target family, repeatable, e.g. --option shots=8 "
                     "--option lora_r=4 for a decoder LLM (see the family's class in the API "
                     "page)")
    run.add_argument("--select", action="store_true",
                     help="every fine-tuned arm chooses its learning rate and epochs on a "
                     "validation quarter of its labels, at least 50 steps (4 times the work)")
    run.add_argument("--seeds", type=_positive, metavar="K",
                     help="seeds per arm (default: 5 on the tiny models, 3 on pretrained ones)")
    run.add_argument("--epochs", type=_positive, metavar="E",
                     help="fine-tuning epochs per run, exactly (default: the model's "
                     f"target_config: on a pretrained body, at least {MIN_STEPS_PRETRAINED} "
                     "steps)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: runs/…; an existing "
                     "folder with files is never overwritten: a new one is made beside it)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out DIR from its last checkpoint (after a crash, "
                     "a sleeping laptop, a dead Colab session)")
    run.add_argument("--checkpoint-every", type=_positive, default=0, metavar="STEPS",
                     help="checkpoint every STEPS optimizer steps too (default: after each epoch)")
    run.set_defaults(func=cmd_run)
    pred = sub.add_parser("predict", help="label texts with a model saved by `run --save`")
    pred.add_argument("--model", required=True, metavar="DIR",
                      help="folder written by `transfer-lab run --save DIR`")
    pred.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    pred.add_argument("--file", metavar="FILE", help="more texts: one per line (.txt) or a "
                      "column of a .csv/.tsv/.jsonl file")
    _file_options(pred)
    pred.add_argument("--max-length", type=_positive, metavar="TOKENS",
                      help="texts are truncated to this many tokens (default: the length the "
                      "model was fine-tuned with)")
    pred.set_defaults(func=cmd_predict)
    tasks = sub.add_parser("tasks", help="list the tasks, their family and metric")
    tasks.add_argument("--json", action="store_true", help="print a JSON list of objects")
    tasks.set_defaults(func=cmd_tasks)
    sub.add_parser("models", help="list the backbones").set_defaults(func=cmd_models)
    return p


class _Names:
    """The choices of an option, read from a registry the first time a value is checked."""

    def __init__(self, names: Callable[[], list[str]]):
        self.names = names

    def __contains__(self, name) -> bool:
        return name in self.names()

    def __iter__(self):
        return iter(self.names())


def _targets() -> list[str]:
    """Return the names of the registered tasks."""
    from transfer_lab.data.tasks import TASKS

    return list(TASKS)


def _sources() -> list[str]:
    """Return the names of the registered tasks and unlabeled corpora."""
    from transfer_lab.data.tasks import CORPORA

    return [*_targets(), *CORPORA]


def _option(text: str) -> dict:
    """Parse KEY=VALUE into {key: value}, the value as a number, true/false, none or text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. shots=8")
    words = {"true": True, "false": False, "none": None}
    if value.strip().lower() in words:
        return {key.strip(): words[value.strip().lower()]}
    for kind in (int, float):
        try:
            return {key.strip(): kind(value)}
        except ValueError:
            pass
    return {key.strip(): value}


def _positive(text: str) -> int:
    """Parse a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _file_options(group) -> None:
    """Add the options that say how to read a file of texts: its text column and encoding."""
    group.add_argument("--text-column", default="text", metavar="NAME",
                       help="column of the texts (default: %(default)s)")
    group.add_argument("--encoding", default="utf-8", metavar="CODEC",
                       help="text encoding of the files (default: %(default)s, with or without "
                       "a byte-order mark; e.g. latin-1, cp1252)")


def _names(text: str) -> list[str]:
    """Parse a comma-separated list of names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, e.g. bow,transfer")
    return names


def _words(text: str) -> tuple[str, ...]:
    """Parse --label-words: comma-separated words, e.g. negative,positive."""
    words = tuple(w.strip() for w in text.split(","))
    if not all(words):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of words; give one per label, "
                                         "comma-separated, e.g. negative,positive")
    return words


def _labels(text: str) -> int:
    """Parse --labels: a whole number ≥ 1, or `all` (returned as 0)."""
    return 0 if text.strip().lower() == "all" else _positive(text)


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line: `transfer-lab: warning: …`."""
    print(f"transfer-lab: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the user's mistakes print one line and return 2 (130 when
    interrupted); any other error raises, with its traceback."""
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warn_one_line
            args.func(args)
    except InputError as err:
        if os.environ.get("TRANSFER_LAB_DEBUG"):
            raise
        print(f"transfer-lab: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "out_dir", None)
        hint = f"; continue with the same command plus --resume --out {out}" if out else ""
        print(f"transfer-lab: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
