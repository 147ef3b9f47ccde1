"""Reading a user's file as a spreadsheet shows it: one row per line, never a row swallowed.

`read_rows` reads a CSV, TSV or JSON Lines file into a list of dicts. A TSV's quotes are
characters (a field that is entirely in quotes, with inner quotes doubled, is unquoted); a CSV's
quoted fields may hold line breaks; a stray quote that would swallow rows, or a line with the
wrong number of fields, is refused with its line and the fix. `read_text` decodes a file with or
without a byte-order mark.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from transfer_lab.validate import InputError

_QUOTED = re.compile(r'"((?:[^"]|"")*)"', re.DOTALL)  # a field wholly in quotes, "" inside
SWALLOWED = ("a stray \" in the text? save the file as TSV, or quote the field and double each "
             "\" inside it (\"\")")

FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None}


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
