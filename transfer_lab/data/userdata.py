"""Bring your own data: a task from a CSV, TSV or JSON Lines file (the course page explains it).

    task = tl.task_from_file("train.tsv", text="sentence", label="label")  # registers nothing
    result = tl.compare(task, model="minilm", init="pretrained", labels=64)

The format comes from the extension. Rows are read as a spreadsheet shows them, one per line
(`files.read_rows`): a TSV's quotes are characters, a CSV's quoted fields may hold line breaks,
and a stray quote that would swallow rows is refused with its line. Labels may be strings (mapped to
ids, sorted, and stored as `id2label` in the saved model) or integers; `label_words` names
numeric labels for a decoder LLM, which answers in words.
Without an eval file a seeded, stratified fifth of the file is held out for testing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

from transfer_lab.data.files import FORMATS, read_rows, read_text
from transfer_lab.data.tasks import Corpus, Task
from transfer_lab.validate import InputError

MIN_ROWS = 10  # rows a file needs before a fifth of it can be held out as a test set




def _columns(rows: list[dict], path: Path, text: str, label: str) -> tuple[list[str], list]:
    """Return the text and label columns, checked: present, non-empty strings, labels set."""
    if not rows:
        raise InputError(f"{path.name} has no rows; give a file with a header and examples")
    found = list(rows[0])
    missing = [c for c in (text, label) if c not in found]
    if missing:
        raise InputError(f"{path.name} has no column {missing[0]!r}; columns found: "
                         f"{', '.join(found)} (choose them with text=/label= or "
                         "--text-column/--label-column)")
    texts, labels = [], []
    for i, row in enumerate(rows, 1):
        t, y = row[text], row[label]
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"{path.name} row {i}: the text {t!r} is not a non-empty string; "
                             "remove the row or fill in its text")
        if y is None or (isinstance(y, str) and not y.strip()) or isinstance(y, (float, list)):
            raise InputError(f"{path.name} row {i}: label {y!r} is missing or not a class name / "
                             "whole number; give every row one label")
        texts.append(t)
        labels.append(y)
    return texts, labels


def _label_names(labels: list, extra: list | None = None) -> list[str]:
    """Return the sorted class names (integers keep their order: 0, 1, 2, …)."""
    values = set(labels) | set(extra or [])
    as_int = [_maybe_int(v) for v in values]
    if all(v is not None for v in as_int):
        top = max(as_int)
        if min(as_int) < 0:
            raise InputError(f"labels must be 0 or more (found {min(as_int)}); renumber them "
                             "from 0 or use class names")
        return [str(i) for i in range(top + 1)]
    return sorted(str(v) for v in values)


def _maybe_int(value) -> int | None:
    """Return value as an int when it is a whole number (or its text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Return (train, held-out) row indices: `fraction` of each class held out, seeded."""
    by_class = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    rng = random.Random(seed)
    train, held = [], []
    for rows in by_class.values():
        rng.shuffle(rows)
        k = max(1, round(fraction * len(rows))) if len(rows) > 1 else 0
        held += rows[:k]
        train += rows[k:]
    return sorted(train), sorted(held)


def task_from_file(
    path: str | Path,
    text: str = "text",
    label: str = "label",
    eval_path: str | Path | None = None,
    name: str | None = None,
    held_out: float = 0.2,
    seed: int = 0,
    encoding: str = "utf-8",
    label_words: Sequence[str] | None = None,
) -> Task:
    """Return a classification task read from a file of texts and labels (not registered:
    pass it as it is, or name it inside `with tasks.using(task):`).

    Without `eval_path`, a seeded, stratified `held_out` share is the test split (0: none, every
    row trains, as for a source file). `label_words` names the labels in their order (0, 1, …
    or sorted names), e.g. ("negative", "positive") for 0/1: they become the task's classes,
    the words a decoder LLM answers with; the file's labels stay the ids.
    """
    path = Path(path)
    texts, raw = _columns(read_rows(path, encoding), path, text, label)
    if eval_path is not None:
        eval_texts, eval_raw = _columns(read_rows(eval_path, encoding), Path(eval_path), text,
                                        label)
    names = _label_names(raw, eval_raw if eval_path is not None else None)
    index = {n: i for i, n in enumerate(names)}
    classes = tuple(names) if label_words is None else _words(label_words, names, path)
    ids = [index[str(_maybe_int(y)) if _maybe_int(y) is not None else str(y)] for y in raw]
    if len(set(ids)) < 2:
        raise InputError(f"{path.name} has only one class in its training rows; a classifier "
                         "needs at least two")
    if eval_path is None and not held_out:  # a source: every row trains θ_S
        train, test = (texts, ids), ([], [])
    elif eval_path is None:
        smallest = min(ids.count(y) for y in set(ids))
        if smallest < 2 or len(ids) < MIN_ROWS:
            raise InputError(f"{path.name} has {len(ids)} rows ({smallest} in its smallest "
                             f"class): too few to hold out a test set; give at least {MIN_ROWS} "
                             "rows with 2 or more of each class, or pass the test rows with "
                             "--target-eval-file (eval_path=)")
        train_rows, test_rows = stratified_split(ids, held_out, seed)
        test = ([texts[i] for i in test_rows], [ids[i] for i in test_rows])
        train = ([texts[i] for i in train_rows], [ids[i] for i in train_rows])
    else:
        eval_ids = [index[str(_maybe_int(y)) if _maybe_int(y) is not None else str(y)]
                    for y in eval_raw]
        train, test = (texts, ids), (eval_texts, eval_ids)

    def load(split: str, n: int, seed_: int) -> Dataset:
        rows_t, rows_y = train if split == "train" else test
        order = list(range(len(rows_t)))
        if split == "train" and n < len(order):  # a seeded, stratified subset of n labels
            picked, rest = stratified_split(rows_y, 1 - n / len(order), seed_)
            order = picked + rest
        order = order[:n]
        return Dataset.from_dict({"text": [rows_t[i] for i in order],
                                  "label": [rows_y[i] for i in order]})

    rows = len(train[0]) + (len(test[0]) if eval_path is None else 0)
    named = (f"classes {', '.join(classes)}" if label_words is None else
             f"labels {', '.join(f'{n} → {w}' for n, w in zip(names, classes, strict=True))}")
    return Task(name or path.stem, "classification", classes,
                f"your data: {rows} rows of {path.name} ({len(train[0])} train, {len(test[0])} "
                f"test; {named})", load, size=len(train[0]))


def _words(label_words: Sequence[str], names: list[str], path: Path) -> tuple[str, ...]:
    """Return the label words, checked: one per class, distinct, not empty."""
    words = tuple(str(w).strip() for w in label_words)
    if len(words) != len(names) or not all(words) or len(set(words)) < len(words):
        raise InputError(f"{len(words)} label words ({', '.join(words)}) for the {len(names)} "
                         f"classes of {path.name} ({', '.join(names)}); give one distinct word "
                         "per class, in label order (--label-words negative,positive, "
                         "label_words=)")
    return words


def corpus_from_file(path: str | Path, text: str = "text", name: str | None = None,
                     encoding: str = "utf-8") -> Corpus:
    """Return an unlabeled corpus (not registered): one text per line of a .txt file, or the
    `text` column of a CSV, TSV or JSON Lines file (the `dapt` arm trains on it)."""
    path = Path(path)
    if path.suffix.lower() in FORMATS:
        rows = read_rows(path, encoding)
        if rows and text not in rows[0]:
            raise InputError(f"{path.name} has no column {text!r}; columns found: "
                             f"{', '.join(rows[0])} (choose one with --text-column)")
        texts = [str(row[text]).strip() for row in rows]
    else:
        texts = read_text(path, encoding).splitlines()
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise InputError(f"{path.name} holds no text; give one text per line (or a text column)")

    def make(n: int, seed: int) -> list[str]:
        order = random.Random(seed).sample(range(len(texts)), len(texts))
        return [texts[i] for i in order[:n]]

    return Corpus(name or f"unlabeled-{path.stem}",
                  f"your unlabeled text: {path.name} ({len(texts)} texts)", make,
                  examples=len(texts))
