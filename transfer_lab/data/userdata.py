"""Bring your own data: a task from a CSV, TSV or JSON Lines file (the course page explains it).

    task = tl.task_from_file("train.tsv", text="sentence", label="label")  # registers nothing
    result = tl.compare(task, model="minilm", init="pretrained", labels=64)

The format comes from the extension. Rows are read as a spreadsheet shows them, one per line
(`read_rows`): a TSV's quotes are characters, a CSV's quoted fields may hold line breaks, and a
stray quote that would swallow rows is refused with its line. Labels may be strings (mapped to
ids, sorted, and stored as `id2label` in the saved model) or integers; `label_words` names
numeric labels for a decoder LLM, which answers in words.
Without an eval file a seeded, stratified fifth of the file is held out for testing.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

from transfer_lab.data.tasks import Corpus, Task
from transfer_lab.validate import InputError

FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None}
MIN_ROWS = 10  # rows a file needs before a fifth of it can be held out as a test set


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Return a file's text: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8").

    Another encoding raises one line naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"data file {str(path)!r} does not exist; check the path")
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return path.read_bytes().decode(codec)
    except UnicodeDecodeError as err:
        raise InputError(f"{path.name} is not {encoding} text (byte {err.start} cannot be "
                         f"read); re-save it as UTF-8 (in Excel: \"CSV UTF-8\"), or pass its "
                         f"encoding, e.g. --encoding latin-1") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; use one Python knows, e.g. utf-8, "
                         "latin-1 or cp1252") from None


def read_rows(path: str | Path, encoding: str = "utf-8") -> list[dict]:
    """Return the rows of a CSV, TSV or JSON Lines file as dicts, one per line (see `read_text`).

    Rows are what a spreadsheet shows: one per line, except that a CSV's quoted field (`"…"`,
    a `"` inside it doubled) may hold line breaks. A TSV's quotes are characters; only a field
    wholly in quotes (a TSV written with quoting) is unquoted. A row never swallows another: a
    quote that runs over rows, or a line with the wrong number of fields, raises one line naming
    the line and the fix.
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"cannot read {path.name!r}: use a .csv, .tsv or .jsonl file")
    delimiter = FORMATS[path.suffix.lower()]
    text = read_text(path, encoding)
    if delimiter is not None:
        records = (_tsv_records if delimiter == "\t" else _csv_records)(text, path)
        if not records:
            return []
        (_, _, header), *records = records
        return [dict(zip(header, fields, strict=True)) for _, _, fields in records]
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{path.name} line {i} is not JSON ({err.msg}); write one "
                                 "JSON object per line") from None
    return rows


_QUOTED = re.compile(r'"((?:[^"]|"")*)"', re.DOTALL)  # a field wholly in quotes, "" inside
SWALLOWED = ("a stray \" in the text? save the file as TSV, or quote the field and double each "
             "\" inside it (\"\")")


def _lines(text: str) -> list[str]:
    """Return the file's lines, without their line ends (\n or \r\n)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and not lines[-1] else lines


def _fit(fields: list[str], width: int, where: str, path: Path, sep: str) -> list[str]:
    """Return a record's fields, trailing empty ones beyond the header dropped; refuse a record
    with too few or too many."""
    while len(fields) > width and not fields[-1].strip():
        fields = fields[:-1]
    if len(fields) != width:
        name = "tab" if sep == "\t" else "comma"
        hint = (f"a {name} inside a text? " + ("replace it with a space" if sep == "\t" else
                "quote the field (\"…\") or save the file as TSV")
                if len(fields) > width else "fill in the missing field")
        raise InputError(f"{path.name} {where} has {len(fields)} fields where the header has "
                         f"{width}: {hint}")
    return fields


def _tsv_records(text: str, path: Path) -> list[tuple[int, int, list[str]]]:
    """Return (first line, last line, fields) of the header and each row of a TSV.

    Quotes are characters, except in a field wholly in quotes, which is unquoted; such a field
    spans lines only where its line is short of fields and the quote closes at a field's end.
    """
    lines, records, i = _lines(text), [], 0
    width = None
    while i < len(lines):
        start, fields = i, lines[i].split("\t")
        if not lines[i].strip():
            i += 1
            continue
        if width is not None and len(fields) < width and fields[-1].startswith('"') \
                and not _QUOTED.fullmatch(fields[-1]):  # a quoted field with line breaks?
            joined = lines[i]
            for j in range(i + 1, len(lines)):
                joined += "\n" + lines[j]
                parts = joined.split("\t")
                if len(parts) > width:
                    break
                if len(parts) == width and all(_QUOTED.fullmatch(f) for f in parts if "\n" in f):
                    fields, i = parts, j
                    break
        unquoted = [m.group(1).replace('""', '"') if (m := _QUOTED.fullmatch(f)) else f
                    for f in fields]
        if width is None:
            width = len(unquoted)
        else:
            unquoted = _fit(unquoted, width, f"line {start + 1}", path, "\t")
        records.append((start + 1, i + 1, unquoted))
        i += 1
    return records


def _csv_records(text: str, path: Path) -> list[tuple[int, int, list[str]]]:
    """Return (first line, last line, fields) of the header and each row of a CSV.

    A quoted field may hold line breaks; one whose lines read as rows of their own (a stray
    `"` opened it), or that never closes, is refused, naming its first line.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, end = [], 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            if reader.line_num > start or "end of data" in str(err):
                last = (f"runs to line {reader.line_num}, where it closes mid-text"
                        if "end of data" not in str(err) else "never closes")
                raise InputError(f"{path.name} line {start} opens a quoted field that {last}: "
                                 f"{SWALLOWED}") from None
            raise InputError(f"{path.name} line {start}: a \" inside a quoted field is not "
                             "doubled; write it as \"\" (or save the file as TSV)") from None
        end = reader.line_num
        if fields:
            records.append((start, end, fields))
    if not records:
        return []
    width = len(records[0][2])
    # a line inside a quoted field that reads as a row of its own (its fields of the columns
    # with few values, the labels, are values those columns take) is a row the field swallowed
    single = [f for a, b, f in records[1:] if a == b and len(f) == width]
    values = [{f[j].strip() for f in single} for j in range(width)]
    labels = [j for j in range(width) if single and len(values[j]) <= len(single) / 2]
    lines = _lines(text)
    for a, b, fields in records[1:]:
        parts = [lines[n - 1].split(",") for n in range(a, b)]  # the field's lines but the last
        if a < b and (len(fields) != width or any(
                labels and len(p) == width and all(p[j].strip() in values[j] for j in labels)
                for p in parts)):
            raise InputError(f"{path.name} line {a} opens a quoted field that runs to line "
                             f"{b}, swallowing rows: {SWALLOWED}")
    return [records[0]] + [(a, b, _fit(f, width, f"line {a}", path, ","))
                           for a, b, f in records[1:]]


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
