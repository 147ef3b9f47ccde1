"""Checks at the package's boundary: one clear error per bad input, naming the fix (chapter 4).

Every function here raises `InputError` (a ValueError) with one line that says what is wrong and
how to fix it; the command line prints that line and exits with status 2. Any other exception
is not the user's mistake and keeps its traceback.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path

PRECISIONS = ("no", "fp16", "bf16", "fp8")



class InputError(ValueError):
    """A mistake in what the user gave (a name, a number, a file, a folder, a missing install):
    the message says what is wrong and how to fix it. The CLI prints it as one line, exit 2."""


class OutputExists(InputError, FileExistsError):
    """A folder to write into already holds files: transfer-lab never overwrites them."""


def choice(kind: str, name, choices: Iterable[str]) -> str:
    """Return `name` if it is one of `choices`; else raise naming them all."""
    choices = list(choices)
    if name not in choices:
        raise InputError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")
    return name


def not_empty(data, what: str = "data") -> None:
    """Raise if a data set (anything with a length) holds no examples."""
    if data is None or len(data) == 0:
        raise InputError(f"{what} is empty (0 examples); pass a data set with at least one example")


def _row(i: int, where: str) -> str:
    """Return 'row i of where' (rows counted from 0, as in a datasets.Dataset)."""
    return f"row {i} of {where}"


def texts(values: Sequence, where: str = "the data") -> None:
    """Raise on the first text that is not a string or is empty."""
    for i, text in enumerate(values):
        if not isinstance(text, str):
            raise InputError(f"the text of {_row(i, where)} is {text!r} ({type(text).__name__}), "
                             "not a string; convert it with str() or drop the row")
        if not text.strip():
            raise InputError(f"the text of {_row(i, where)} is empty; give it some words or drop "
                             "the row")


def labels(values: Sequence, names: Sequence[str] = (), num_classes: int | None = None,
           where: str = "the data") -> None:
    """Raise on the first label that is not a class index 0..num_classes-1 (whole number)."""
    num_classes = num_classes if num_classes is not None else (len(names) or None)
    span = f"0..{num_classes - 1}" if num_classes else "0, 1, 2, …"
    named = f" ({', '.join(names)})" if names else ""
    for i, label in enumerate(values):
        if isinstance(label, str) and label in names:
            raise InputError(f"the label of {_row(i, where)} is the name {label!r}; labels are "
                             f"class indices: use {list(names).index(label)} for {label!r} "
                             f"(classes {span}{named})")
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise InputError(f"the label of {_row(i, where)} is {label!r} "
                             f"({type(label).__name__}); labels must be whole numbers {span}"
                             f"{named}: map your labels to class indices")
        if label < 0 or (num_classes and label >= num_classes):
            raise InputError(f"the label of {_row(i, where)} is {label}, out of range; labels "
                             f"must be {span}{named}")


def classification_data(data, names: Sequence[str] = (), num_classes: int | None = None,
                        where: str = "the data") -> None:
    """Raise unless `data` has non-empty string texts and class-index labels (text, label)."""
    missing = [c for c in ("text", "label") if c not in data.column_names]
    if missing:
        raise InputError(f"{where} has the columns {data.column_names}; a classification data "
                         f"set needs 'text' and 'label' ({', '.join(missing)} missing): rename "
                         "them with data.rename_column(old, new)")
    not_empty(data, where)
    texts(data["text"][:], where)  # [:] reads a datasets column at once (fast)
    labels(data["label"][:], names, num_classes, where)


def train_config(config) -> None:
    """Raise on a TrainConfig value that cannot train (a rate ≤ 0, an empty batch, …)."""
    positive = {"lr": config.lr, "epochs": config.epochs, "batch_size": config.batch_size,
                "eval_batch_size": config.eval_batch_size, "max_length": config.max_length}
    if config.max_steps is not None:
        positive["max_steps"] = config.max_steps
    for key, value in positive.items():
        if not isinstance(value, numbers.Real) or not value > 0 or not math.isfinite(value):
            raise InputError(f"TrainConfig {key}={value!r} must be a positive number; e.g. "
                             f"TrainConfig({key}={_example(key)})")
    if not 0 <= config.warmup_ratio < 1:
        raise InputError(f"TrainConfig warmup_ratio={config.warmup_ratio!r} must be in [0, 1); "
                         "e.g. warmup_ratio=0.1 (10 % of the steps)")
    if config.weight_decay < 0 or (config.max_grad_norm or 0) < 0 or config.eval_every < 0:
        raise InputError("TrainConfig weight_decay, max_grad_norm and eval_every must not be "
                         f"negative (got {config.weight_decay}, {config.max_grad_norm}, "
                         f"{config.eval_every}); use 0 to switch them off")
    from transformers.trainer_utils import SchedulerType

    choice("scheduler", config.scheduler, [s.value for s in SchedulerType])
    choice("mixed_precision", config.mixed_precision, PRECISIONS)


def _example(key: str) -> str:
    """Return a sensible example value for a TrainConfig field."""
    return {"lr": "1e-4", "epochs": "30", "batch_size": "16", "eval_batch_size": "128",
            "max_length": "64", "max_steps": "600"}[key]


def theta_folder(theta_S, model: str | None = None) -> dict:
    """Return θ_S's config.json as a dict; raise if the folder is not a saved model of `model`."""
    folder = Path(theta_S)
    if not (folder / "config.json").is_file():
        what = "does not exist" if not folder.exists() else "has no config.json"
        raise InputError(f"θ_S folder {str(folder)!r} {what}; pass a folder written by "
                         "tl.pretrain_source (or save_pretrained), or None to train from scratch")
    card = folder / "theta_S.json"
    if model is not None and card.is_file():
        trained = json.loads(card.read_text()).get("model")
        if trained and trained != model:
            raise InputError(f"θ_S in {str(folder)!r} was trained from model {trained!r}, not "
                             f"{model!r}; pass model={trained!r} (the tokenizer and sizes must "
                             "match)")
    return json.loads((folder / "config.json").read_text())


def head_size(config: dict) -> int | None:
    """Return the number of classes of a saved classifier's head (None: not a classifier)."""
    if not any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return None
    return len(config.get("id2label") or {}) or config.get("num_classes")
