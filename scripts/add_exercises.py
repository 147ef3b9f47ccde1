"""Append (or refresh) the self-checking exercises after each chapter's "Exercises" section.

    python scripts/add_exercises.py

Each exercise is a markdown cell (the task, and the check to run) and a solution cell hidden in
the rendered book (tag `hide-input`) that passes the check; its output is computed here by
running the solution, and nbval checks it again in CI.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import nbformat

BOOK = Path(__file__).resolve().parents[1] / "book"
MARK = "exercises-section"  # the tag of the cells this script owns

EXERCISES = {
    "01_background.ipynb": [
        ("ch1-label-budget", """**Exercise: a fair label budget.** Every curve in this chapter
gives each label budget the same share of each class. Write `label_budget(labels, n, seed)` that
returns `n` different example indices, `n // classes` from each class, chosen with
`random.Random(seed)` so the same seed picks the same examples. Check it with
`tl.exercises.check("ch1-label-budget", label_budget)`.""", '''import random


def label_budget(labels, n, seed):
    rng, classes = random.Random(seed), sorted(set(labels))
    by_class = {c: [i for i, y in enumerate(labels) if y == c] for c in classes}
    return [i for c in classes for i in rng.sample(by_class[c], n // len(classes))]


tl.exercises.check("ch1-label-budget", label_budget)'''),
    ],
    "02_concepts.ipynb": [
        ("ch2-mean-pooling", """**Exercise: a sentence embedding.** MiniLM turns a text
into one vector by averaging its token vectors, leaving padding out. Write
`mean_pooling(hidden, attention_mask)` (shapes `(batch, tokens, hidden)` and
`(batch, tokens)`) and check it with `tl.exercises.check("ch2-mean-pooling", mean_pooling)`.""",
         '''def mean_pooling(hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


tl.exercises.check("ch2-mean-pooling", mean_pooling)'''),
    ],
    "03_math.ipynb": [
        ("ch3-cross-entropy", """**Exercise: the target loss.** $L_T$ in this chapter is
the mean cross-entropy. Write `cross_entropy(logits, labels)` from `log_softmax` (not
`F.cross_entropy`) and check it with `tl.exercises.check("ch3-cross-entropy", cross_entropy)`.""",
         '''def cross_entropy(logits, labels):
    log_p = logits.log_softmax(-1)
    return -log_p.gather(1, labels[:, None]).mean()


tl.exercises.check("ch3-cross-entropy", cross_entropy)'''),
    ],
    "04_code.ipynb": [
        ("ch4-fresh-optimizer", """**Exercise: the optimizer belongs to its model.** The
seed's recipe reused the source model's optimizer for the target. Write
`target_optimizer(model, lr)` that returns an AdamW over exactly the target model's parameters,
and check it with `tl.exercises.check("ch4-fresh-optimizer", target_optimizer)`.""",
         '''import torch


def target_optimizer(model, lr):
    return torch.optim.AdamW(model.parameters(), lr=lr)


tl.exercises.check("ch4-fresh-optimizer", target_optimizer)'''),
    ],
    "05_applications/ner.ipynb": [
        ("ch5-align-labels", """**Exercise: labels for word pieces.** A word split into
pieces keeps its label on the first piece; later pieces and the special tokens get -100, which
the loss ignores. Write `align_labels(word_ids, word_labels)` (`word_ids` as a fast tokenizer's
`word_ids()` returns them) and check it with
`tl.exercises.check("ch5-align-labels", align_labels)`.""",
         '''def align_labels(word_ids, word_labels):
    aligned, previous = [], None
    for word in word_ids:
        aligned.append(-100 if word is None or word == previous else word_labels[word])
        previous = word
    return aligned


tl.exercises.check("ch5-align-labels", align_labels)'''),
    ],
    "06_tools.ipynb": [
        ("ch6-warmup-schedule", """**Exercise: the schedule `fit` takes from
Transformers.** Write `linear_warmup(step, total, warmup, lr)`: the learning rate rises linearly
from 0 to `lr` over `warmup` steps, then falls linearly to 0 at step `total`. Check it against
`get_linear_schedule_with_warmup` with
`tl.exercises.check("ch6-warmup-schedule", linear_warmup)`.""",
         '''def linear_warmup(step, total, warmup, lr):
    if step < warmup:
        return lr * step / warmup
    return lr * max(0.0, (total - step) / (total - warmup))


tl.exercises.check("ch6-warmup-schedule", linear_warmup)'''),
    ],
    "07_challenges.ipynb": [
        ("ch7-word-overlap", """**Exercise: the word overlap.** Write
`word_overlap(source_texts, target_texts)` that returns Σ_w min(p_S(w), p_T(w)), where p(w) is
word w's share of all the words in a list of texts (words as `re.findall(r"\\w+", text.lower())`
finds them), and check it with `tl.exercises.check("ch7-word-overlap", word_overlap)`.""",
         '''import re
from collections import Counter


def word_overlap(source_texts, target_texts):
    def p(texts):
        counts = Counter(w for text in texts for w in re.findall(r"\\w+", text.lower()))
        total = sum(counts.values())
        return {w: c / total for w, c in counts.items()}

    p_S, p_T = p(source_texts), p(target_texts)
    return sum(min(p_S[w], p_T[w]) for w in p_S.keys() & p_T.keys())


tl.exercises.check("ch7-word-overlap", word_overlap)'''),
    ],
    "07b_strategies.ipynb": [
        ("ch7-discriminative-lr", """**Exercise: discriminative learning rates (ULMFiT).**
Write `layer_groups(model, lr, decay=2.6)` returning AdamW parameter groups: the head (and
pooler) at `lr`, the top encoder layer at `lr / decay`, each lower layer `decay` times lower
again, the embeddings lowest. Check it with
`tl.exercises.check("ch7-discriminative-lr", layer_groups)`.""",
         '''def layer_groups(model, lr, decay=2.6):
    body = model.base_model
    top = [p for n, p in model.named_parameters() if not n.startswith(model.base_model_prefix)]
    groups = [{"params": top + list(body.pooler.parameters()), "lr": lr}]
    for depth, layer in enumerate(reversed(body.encoder.layer), 1):
        groups.append({"params": list(layer.parameters()), "lr": lr / decay**depth})
    depth = len(body.encoder.layer) + 1
    groups.append({"params": list(body.embeddings.parameters()), "lr": lr / decay**depth})
    return groups


tl.exercises.check("ch7-discriminative-lr", layer_groups)'''),
        ("ch7-freeze-body", """**Exercise: a frozen body.** Write `freeze_body(model)` so that
only the classification head of a BERT classifier trains (the `frozen` strategy above), and check
it with `tl.exercises.check("ch7-freeze-body", freeze_body)`.""", '''def freeze_body(model):
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("classifier")


tl.exercises.check("ch7-freeze-body", freeze_body)'''),
    ],
    "07c_unlabeled.ipynb": [
        ("ch7-mask-tokens", """**Exercise: BERT's masking rule.** The masked LM of this part
learns from text in which some tokens are hidden. Write
`mask_tokens(input_ids, mask_id, vocab_size, generator)` that returns `(inputs, labels)` as BERT
masks: each token is chosen with probability `p=0.15`; a chosen token becomes `mask_id` with
probability `0.8`, a random id below `vocab_size` with probability `0.1`, and stays as it is
otherwise. `labels` holds the original id where a token was chosen and `-100` everywhere else
(no loss there). Draw every random number from `generator` and leave `input_ids` unchanged.
Check it with `tl.exercises.check("ch7-mask-tokens", mask_tokens)`.""",
         '''import torch


def mask_tokens(input_ids, mask_id, vocab_size, generator, p=0.15):
    inputs, labels = input_ids.clone(), input_ids.clone()
    chosen = torch.rand(input_ids.shape, generator=generator) < p
    labels[~chosen] = -100
    draw = torch.rand(input_ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = mask_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[swap] = torch.randint(vocab_size, input_ids.shape, generator=generator)[swap]
    return inputs, labels


tl.exercises.check("ch7-mask-tokens", mask_tokens)'''),
    ],
    "08_faq.ipynb": [
        ("ch8-labels-to-match", """**Exercise: how many labels does scratch need?** Given
label budgets, the scratch model's accuracy at each, and a goal (the transfer model's accuracy
with few labels), write `labels_to_match(budgets, scratch, goal)`: the smallest budget whose
scratch accuracy reaches the goal, or `None` when none does. Check it with
`tl.exercises.check("ch8-labels-to-match", labels_to_match)`.""",
         '''def labels_to_match(budgets, scratch, goal):
    reached = [b for b, accuracy in zip(budgets, scratch) if accuracy >= goal]
    return min(reached) if reached else None


tl.exercises.check("ch8-labels-to-match", labels_to_match)'''),
    ],
}

INTRO = """### Exercises that check themselves

Each of these has a check that runs your function on small inputs and says what is wrong when it
is wrong. The solution is hidden below each one: try yours first."""


def _cell(kind: str, source: str, tags: list[str], outputs=None, count: int = 0) -> dict:
    """Return a notebook cell owned by this script (a stable id, so diffs stay small)."""
    cell_id = hashlib.sha1(source.encode()).hexdigest()[:8]
    cell = {"cell_type": kind, "id": f"ex-{cell_id}", "metadata": {"tags": [MARK, *tags]},
            "source": source}
    if kind == "code":  # nbval checks only cells that look executed
        cell.update(execution_count=count, outputs=outputs or [])
    return cell


def _run(code: str, namespace: dict, count: int) -> list[dict]:
    """Run a solution cell as Jupyter would: its stdout, then the value of its last line."""
    body, last = code.rsplit("\n\n\n", 1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(body, "<solution>", "exec"), namespace)  # noqa: S102 - our own solutions
        value = eval(compile(last, "<solution>", "eval"), namespace)  # noqa: S307
    outputs = [{"name": "stdout", "output_type": "stream", "text": out.getvalue()}]
    if value is not None:
        outputs.append({"data": {"text/plain": repr(value)}, "execution_count": count,
                        "metadata": {}, "output_type": "execute_result"})
    return outputs


def main() -> None:
    """Rewrite the exercise cells of every chapter."""
    import transfer_lab as tl

    for name, items in EXERCISES.items():
        path = BOOK / name
        nb = nbformat.read(path, as_version=4)
        nb["cells"] = [c for c in nb["cells"] if MARK not in c.get("metadata", {}).get("tags", [])]
        cells = [_cell("markdown", INTRO, [])]
        count = max([c.get("execution_count") or 0 for c in nb["cells"]], default=0)
        for _check, text, solution in items:
            count += 1
            cells.append(_cell("markdown", text, []))
            cells.append(_cell("code", solution, ["hide-input"],
                               _run(solution, {"tl": tl}, count), count))
        nb["cells"] += [nbformat.from_dict(c) for c in cells]
        nbformat.write(nb, path)
        print(f"{name}: {len(items)} exercise(s)")


if __name__ == "__main__":
    main()
