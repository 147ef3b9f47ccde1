"""The practitioner's first baseline: TF-IDF of word uni- and bigrams + logistic regression.

Its one setting, the inverse regularisation strength C, is chosen by stratified k-fold
cross-validation on the training labels alone (the test split is never seen), as the neural
arms choose theirs on a validation split of the same labels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from datasets import Dataset
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline

from transfer_lab.metrics import classification_metrics

C_GRID = (0.1, 1.0, 10.0, 100.0)


def bow_model(C: float = 1.0, seed: int = 0) -> Pipeline:
    """Return an unfitted TF-IDF (1–2-grams) + logistic regression pipeline."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=C, max_iter=2_000, random_state=seed))


def fit_bow(texts: Sequence[str], labels: Sequence[int], seed: int = 0,
            grid: Sequence[float] = C_GRID) -> tuple[Pipeline, float]:
    """Return (the model refit on all training rows, the C that cross-validation chose)."""
    labels = np.asarray(labels)
    folds = min(5, int(np.bincount(labels).min()) if len(labels) else 0)
    if folds < 2:  # too few labels of a class to hold any out: the default C
        return bow_model(1.0, seed).fit(list(texts), labels), 1.0
    search = GridSearchCV(bow_model(seed=seed), {"logisticregression__C": list(grid)},
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                          scoring="accuracy")
    search.fit(list(texts), labels)
    return search.best_estimator_, float(search.best_params_["logisticregression__C"])


def bow_metrics(train_texts, train_labels, test_texts, test_labels, seed: int = 0) -> dict:
    """Return the test accuracy and macro-F1 of the bag-of-words baseline, and its C."""
    model, C = fit_bow(train_texts, train_labels, seed)
    predicted = model.predict(list(test_texts))
    return {**classification_metrics(list(test_labels), list(predicted)), "C": C}


def bow_arm(train: Dataset, test: Dataset, seed: int = 0) -> dict:
    """Return the `bow` arm's metrics and seconds on rows with `text` and `label` (any family
    whose target is a label per text: classification, and the decoder LLM's)."""
    start = time.perf_counter()
    metrics = bow_metrics(train["text"], train["label"], test["text"], test["label"], seed)
    return {**metrics, "seconds": time.perf_counter() - start}
