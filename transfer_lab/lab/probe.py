"""What a model knows before fine-tuning: frozen features, linear probes, fill-mask (ch. 2, 8).

`embed` turns texts into sentence vectors with a frozen body (mean pooling over tokens, as
all-MiniLM-L6-v2 does); `probe` fits a logistic regression on such vectors — a linear probe,
the cheapest way to transfer (feature extraction, chapter 8). `fill_mask` and
`polarity_agreement` ask a masked-language model θ_S which words fit a gap.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from transfer_lab.data import world
from transfer_lab.data.tasks import get_task
from transfer_lab.models import build_model, load_tokenizer
from transfer_lab.validate import InputError

POOLINGS = ("mean", "cls")


def body_of(model: torch.nn.Module) -> torch.nn.Module:
    """Return the transformer body of a model with a head (the model itself if it has none)."""
    prefix = getattr(model, "base_model_prefix", "")
    return getattr(model, prefix, model) if prefix else model


@torch.inference_mode()
def embed(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 64,
    normalize: bool = False,
) -> np.ndarray:
    """Return one frozen feature vector per text (n × hidden), from the body's last layer.

    `pooling="mean"` averages the token vectors the attention mask keeps (as
    all-MiniLM-L6-v2 does); `"cls"` takes the first token's vector.
    """
    if pooling not in POOLINGS:
        raise InputError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
    if len(texts) == 0:
        raise InputError("no texts to embed; pass at least one text")
    body = body_of(model)
    was_training = body.training
    body.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        hidden = body(input_ids=batch["input_ids"],
                      attention_mask=batch["attention_mask"]).last_hidden_state
        if pooling == "cls":
            vec = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if normalize:
            vec = torch.nn.functional.normalize(vec, dim=-1)
        out.append(vec.float().cpu().numpy())
    body.train(was_training)
    return np.concatenate(out)


def _classifier(C: float, seed: int):
    """Return the probe: standardised features → L2-regularised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, max_iter=5000, random_state=seed))


def probe(
    train_features: np.ndarray,
    train_labels,
    test_features: np.ndarray,
    test_labels,
    *,
    C: float = 1.0,
    seed: int = 0,
) -> float:
    """Return the test accuracy of a logistic regression fitted on frozen training features."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise InputError("features and labels differ in length; pass one label per feature row")
    if len(np.unique(train_labels)) < 2:
        raise InputError("the training labels hold a single class; a probe needs at least 2")
    clf = _classifier(C, seed).fit(train_features, train_labels)
    return float((clf.predict(test_features) == test_labels).mean())


def probe_cv(features: np.ndarray, labels, *, folds: int = 5, C: float = 1.0,
             seed: int = 0) -> tuple[float, float]:
    """Return the mean and standard deviation of a linear probe's accuracy over stratified folds."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(_classifier(C, seed), features, np.asarray(labels), cv=splits)
    return float(scores.mean()), float(scores.std())


def probe_curve(features: np.ndarray, labels, sizes: list[int], *, seeds: int = 5,
                C: float = 1.0) -> dict[int, list[float]]:
    """Return, per training size n, a probe's test accuracy for each seed (n random training rows).

    Seed s draws n rows stratified by label for training and tests on all the other rows.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if max(sizes) > len(labels) - 2:
        raise InputError(f"training size {max(sizes)} leaves no test rows of {len(labels)}; "
                         "use smaller sizes or more texts")
    out = {}
    for n in sizes:
        out[n] = []
        for seed in range(seeds):
            train, test = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels,
                                           random_state=seed)
            out[n].append(probe(features[train], labels[train], features[test], labels[test],
                                C=C, seed=seed))
    return out


def project_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Return the features projected on their first two principal components (n × 2)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(features)


def linear_probe(
    theta: str | Path | None,
    target: str = "film_sentiment",
    labels: int = 64,
    seed: int = 0,
    model: str = "tiny",
    *,
    test: int | None = None,
    pooling: str = "mean",
) -> float:
    """Return the target test accuracy of a linear probe on θ's frozen body (θ=None: random).

    The counterpart of `transfer`: same target, label budget and seed, but only a logistic
    regression on top of the frozen features is trained (feature extraction).
    """
    task = get_task(target)
    tokenizer = load_tokenizer(str(theta) if theta else model)
    net = build_model(model, "classification", task.num_classes, theta=theta, seed=seed)
    train, held_out = task.load("train", labels, seed), task.load("test", test)
    features = [embed(net, tokenizer, d["text"], pooling=pooling) for d in (train, held_out)]
    return probe(features[0], train["label"], features[1], held_out["label"], seed=seed)


@torch.inference_mode()
def fill_mask(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, text: str, top_k: int = 5,
              candidates: list[str] | None = None) -> list[tuple[str, float]]:
    """Return the `top_k` (token, probability) pairs a masked-LM predicts for the [MASK] in `text`.

    With `candidates`, only those words compete (probabilities renormalised over them).
    """
    enc = tokenizer(text, return_tensors="pt")
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if len(where) != 1:
        raise InputError(f"text must contain exactly one {tokenizer.mask_token}; got "
                         f"{len(where)} in {text!r}")
    was_training = model.training
    model.eval()
    logits = model(**enc).logits[0, where[0, 0]]
    model.train(was_training)
    ids = torch.arange(len(logits))
    if candidates is not None:
        ids = torch.tensor(tokenizer.convert_tokens_to_ids(candidates))
    probs = logits[ids].softmax(-1)
    top = probs.topk(min(top_k, len(ids)))
    tokens = tokenizer.convert_ids_to_tokens(ids[top.indices].tolist())
    return [(t, float(p)) for t, p in zip(tokens, top.values.tolist(), strict=True)]


def masked_contexts(n: int, seed: int = 0, *, cue: bool = True,
                    neighbours: int = 2) -> list[tuple[str, int]]:
    """Return n seeded (text with one [MASK], polarity) pairs: a verdict and same-polarity words.

    E.g. "five stars . superb , [MASK] and wonderful ." (polarity 1). `cue=False` drops the
    verdict, `neighbours=0` drops the neighbouring adjectives (then only the verdict tells).
    """
    if not cue and neighbours == 0:
        raise InputError("a context needs a verdict cue or neighbouring adjectives; "
                         "set cue=True or neighbours >= 1")
    rng = random.Random(f"masked-contexts/{seed}")
    out = []
    for i in range(n):
        polarity = i % 2
        words = rng.sample((world.NEGATIVE, world.POSITIVE)[polarity], neighbours)
        words.insert(rng.randint(0, len(words)), "[MASK]")
        listed = words[0] if len(words) == 1 else f"{' , '.join(words[:-1])} and {words[-1]}"
        text = f"{listed} ."
        if cue:
            text = f"{rng.choice(world.VERDICTS[polarity])} . {text}"
        out.append((text, polarity))
    return out


def polarity_agreement(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                       contexts: list[tuple[str, int]],
                       top_k: int = 5) -> dict[str, float]:
    """Return how often a masked-LM's predictions for [MASK] share the context's polarity.

    `top1_same`: the best token is an adjective of the context's polarity; `topk_same` /
    `topk_opposite`: the share of the top-k tokens that are adjectives of the same / the
    opposite polarity (the rest are other words).
    """
    lists = (set(world.NEGATIVE), set(world.POSITIVE))
    top1 = same = opposite = 0
    for text, polarity in contexts:
        tokens = [t for t, _ in fill_mask(model, tokenizer, text, top_k)]
        top1 += tokens[0] in lists[polarity]
        same += sum(t in lists[polarity] for t in tokens)
        opposite += sum(t in lists[1 - polarity] for t in tokens)
    n = len(contexts)
    return {"top1_same": top1 / n, "topk_same": same / (n * top_k),
            "topk_opposite": opposite / (n * top_k)}
