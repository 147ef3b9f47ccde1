"""Task metrics for chapter 5, "Applications": accuracy, macro F1, entity F1, BLEU, chrF, SQuAD.

Scales: accuracy and F1 of classification and NER are fractions in [0, 1]; BLEU and chrF use
sacrebleu's 0..100 scale; SQuAD exact match and F1 are 0..100 like the official script.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import sacrebleu
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sklearn_f1

from transfer_lab.validate import InputError


def _check_pairs(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    """Return None if `a` and `b` are non-empty and equally long, else raise InputError."""
    if len(a) != len(b):
        raise InputError(
            f"got {len(a)} {name_a} but {len(b)} {name_b}; pass one of each per example"
        )
    if len(a) == 0:
        raise InputError(f"got no {name_a}; pass at least one example")


def classification_metrics(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Return {"accuracy", "macro_f1"} as fractions in [0, 1]."""
    _check_pairs(y_true, y_pred, "labels", "predictions")
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(sklearn_f1(y_true, y_pred, average="macro", zero_division=0)),
    }


def ner_metrics(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict[str, float]:
    """Return entity-level {"f1", "precision", "recall"} in [0, 1] from IOB2 tag sequences."""
    _check_pairs(true_tags, pred_tags, "sentences", "predictions")
    for i, (t, p) in enumerate(zip(true_tags, pred_tags, strict=True)):
        if len(t) != len(p):
            raise InputError(
                f"sentence {i} has {len(t)} gold tags but {len(p)} predicted tags; "
                "predict one tag per token"
            )
    kw = {"zero_division": 0}
    return {
        "f1": float(seqeval_f1(true_tags, pred_tags, **kw)),
        "precision": float(seqeval_precision(true_tags, pred_tags, **kw)),
        "recall": float(seqeval_recall(true_tags, pred_tags, **kw)),
    }


def translation_metrics(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Return corpus {"bleu", "chrf"} on sacrebleu's 0..100 scale, one reference per sentence."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise InputError("pass lists of sentences, not a single string; wrap it: [sentence]")
    _check_pairs(hypotheses, references, "hypotheses", "references")
    return {
        "bleu": float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score),
        "chrf": float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score),
    }


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Return `s` lowercased, without punctuation and articles, with single spaces (SQuAD v1.1)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def squad_exact_match(pred: str, truth: str) -> float:
    """Return 1.0 if the normalised answers are equal, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(truth))


def squad_f1(pred: str, truth: str) -> float:
    """Return the token-overlap F1 in [0, 1] of the normalised answers."""
    pred_tokens = normalize_answer(pred).split()
    truth_tokens = normalize_answer(truth).split()
    n_common = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if n_common == 0:
        return 0.0
    precision = n_common / len(pred_tokens)
    recall = n_common / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Return {"exact_match", "f1"} on 0..100, each the best over an example's gold answers."""
    _check_pairs(predictions, references, "predictions", "references")
    em = f1 = 0.0
    for i, (pred, golds) in enumerate(zip(predictions, references, strict=True)):
        if isinstance(golds, str) or len(golds) == 0:
            raise InputError(
                f"references[{i}] must be a non-empty list of gold answers; wrap one as [answer]"
            )
        em += max(squad_exact_match(pred, g) for g in golds)
        f1 += max(squad_f1(pred, g) for g in golds)
    n = len(predictions)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}
