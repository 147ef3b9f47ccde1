"""Rank sources before fine-tuning: LogME, and how related two domains are (ch. 3 and 7).

You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
ICML 2021. For each target column y, the features F (n × D) of a source model explain y by a
Bayesian linear model y = F w + ε, w ~ N(0, α⁻¹ I), ε ~ N(0, β⁻¹ I). LogME is the maximised log
marginal evidence log p(y | F, α, β) divided by n, averaged over target columns: higher means the
features make the labels easier to predict, so the source is a better start for fine-tuning.

Relatedness of two domains 𝒟 = {𝒳, P(X)} (Pan and Yang; chapter 3): `vocabulary_overlap` is
Σ_w min(p_S(w), p_T(w)), where p(w) is the share of a word among all word occurrences of a
corpus; it is 1 − the total-variation distance between the two word distributions, 1 for
identical frequencies and 0 for disjoint vocabularies. `domain_overlap` computes it for two
registered tasks from seeded samples of their training texts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from transfer_lab.validate import InputError

WORD = re.compile(r"\w+")  # a word: a run of letters, digits or underscores (punctuation ignored)


def log_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """Return log p(y | F, α, β) of the Bayesian linear model, by the direct formula."""
    F = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, D = F.shape
    A = alpha * np.eye(D) + beta * F.T @ F
    m = beta * np.linalg.solve(A, F.T @ y)
    _, logdet_A = np.linalg.slogdet(A)
    return float(
        n / 2 * np.log(beta)
        + D / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((F @ m - y) ** 2)
        - alpha / 2 * m @ m
        - logdet_A / 2
    )


def _max_evidence(
    s: np.ndarray, x: np.ndarray, y_sq: float, n: int, D: int, tol: float, max_iter: int
) -> tuple[float, float, float]:
    """Return (max log evidence, α, β) for one target by the fixed-point iteration of LogME.

    `s` are the squared singular values of F, `x = Uᵀy` the target in the left singular basis and
    `y_sq = ‖y‖²`; every step costs O(min(n, D)).
    """
    x_sq = x**2
    outside = max(y_sq - x_sq.sum(), 0.0)  # part of ‖y‖² outside the column space of F
    tiny = np.finfo(np.float64).tiny

    def posterior(alpha: float, beta: float) -> tuple[float, float, float]:
        # singular basis: m_i = β σ_i x_i / (α + β s_i); F m − y has parts α x_i / (α + β s_i)
        denom = alpha + beta * s
        gamma = float(np.sum(beta * s / denom))  # effective number of parameters
        m_sq = float(np.sum(beta**2 * s * x_sq / denom**2))
        res_sq = float(np.sum(alpha**2 * x_sq / denom**2)) + outside
        return gamma, m_sq, res_sq

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma, m_sq, res_sq = posterior(alpha, beta)
        new_alpha = gamma / max(m_sq, tiny)
        new_beta = (n - gamma) / max(res_sq, tiny)
        done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break

    _, m_sq, res_sq = posterior(alpha, beta)
    # log|A| = Σ log(α + β s_i) over all D directions; s_i = 0 beyond the rank of F
    logdet_A = np.sum(np.log(alpha + beta * s)) + (D - len(s)) * np.log(alpha)
    evidence = (
        n / 2 * np.log(beta)
        + D / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * res_sq
        - alpha / 2 * m_sq
        - logdet_A / 2
    )
    return float(evidence), alpha, beta


def logme(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    regression: bool = False,
    tol: float = 1e-3,
    max_iter: int = 100,
) -> float:
    """Return the LogME score of `features` for `labels`: mean maximised log evidence / n.

    Classification (default): `labels` are n class ids, each class becomes a one-hot target
    column. Regression: `labels` are n values or an n × K array of K target columns.
    """
    F = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if F.ndim != 2:
        raise InputError(
            f"features must be 2-D (n examples × D dimensions), got shape {F.shape}; "
            "reshape, e.g. features.reshape(len(features), -1)"
        )
    n, D = F.shape
    if len(labels) != n:
        raise InputError(
            f"features has {n} rows but labels has {len(labels)}; pass one label per feature row"
        )
    if n == 0 or D == 0:
        raise InputError(f"features of shape {F.shape} are empty; pass at least one example")
    if not np.all(np.isfinite(F)):
        raise InputError("features contain NaN or inf; drop or impute those rows first")
    if regression:
        Y = labels.astype(np.float64).reshape(n, -1)
        if not np.all(np.isfinite(Y)):
            raise InputError("regression labels contain NaN or inf; drop those rows first")
    else:
        if labels.ndim != 1:
            raise InputError(
                f"class labels must be 1-D (one class id per example), got shape {labels.shape}; "
                "for real-valued targets pass regression=True"
            )
        classes = np.unique(labels)
        if len(classes) < 2:
            raise InputError(
                f"labels contain {len(classes)} class; LogME needs at least 2 classes"
            )
        Y = (labels[:, None] == classes[None, :]).astype(np.float64)

    U, sigma, _ = np.linalg.svd(F, full_matrices=False)
    s = sigma**2
    X = U.T @ Y
    scores = [
        _max_evidence(s, X[:, k], float(Y[:, k] @ Y[:, k]), n, D, tol, max_iter)[0] / n
        for k in range(Y.shape[1])
    ]
    return float(np.mean(scores))


def rank_sources(scores: dict[str, float]) -> list[str]:
    """Return the source names sorted by score, highest (most transferable) first."""
    return sorted(scores, key=lambda name: scores[name], reverse=True)


def word_distribution(texts: Sequence[str]) -> dict[str, float]:
    """Return p(w): each lower-cased word's share of all word occurrences in `texts`."""
    if isinstance(texts, str):
        raise InputError("pass a list of texts, not one string (it would be read letter by letter)")
    if len(texts) == 0:
        raise InputError("got an empty list of texts; pass at least one text of the domain")
    counts = Counter(w for text in texts for w in WORD.findall(str(text).lower()))
    total = sum(counts.values())
    if total == 0:
        raise InputError(f"the {len(texts)} texts contain no words; pass at least one text "
                         "with a word in it")
    return {w: c / total for w, c in counts.items()}


def vocabulary_overlap(source_texts: Sequence[str], target_texts: Sequence[str]) -> float:
    """Return Σ_w min(p_S(w), p_T(w)): 1 for the same word frequencies, 0 for no shared word."""
    p_S, p_T = word_distribution(source_texts), word_distribution(target_texts)
    return float(sum(min(p, p_T[w]) for w, p in p_S.items() if w in p_T))


def domain_overlap(source: str, target: str, n: int = 2_000, seed: int = 0) -> float:
    """Return `vocabulary_overlap` of `n` training texts of two tasks, drawn with `seed`.

    Tasks come from `tasks.get_task`; a task whose rows have no `text` column (NER, QA,
    translation) raises InputError.
    """
    from transfer_lab.data.tasks import get_task

    texts = []
    for name in (source, target):
        rows = get_task(name).load("train", n, seed)
        if "text" not in rows.column_names:
            raise InputError(f"task {name!r} has no text column ({', '.join(rows.column_names)}); "
                             "pass texts to vocabulary_overlap instead")
        texts.append(rows["text"])
    return vocabulary_overlap(*texts)
