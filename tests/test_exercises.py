"""Every exercise check accepts a right answer and rejects a wrong one with a helpful message."""

import re
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from transfer_lab.lab.exercises import CHECKS, ExerciseError, check


def cross_entropy_right(logits, labels):
    return -torch.log_softmax(logits, -1).gather(1, labels[:, None]).mean()


def cross_entropy_wrong(logits, labels):  # summed, not averaged
    return -torch.log_softmax(logits, -1).gather(1, labels[:, None]).sum()


def optimizer_right(model, lr):
    return torch.optim.AdamW(model.parameters(), lr=lr)


def optimizer_wrong(model, lr):  # the seed's bug: an optimizer over another model
    from transfer_lab.lab.exercises import _tiny_bert

    return torch.optim.AdamW(_tiny_bert(seed=0).parameters(), lr=lr)


def freeze_right(model):
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("classifier")


def freeze_wrong(model):  # freezes the embeddings only
    for p in model.bert.embeddings.parameters():
        p.requires_grad = False


def discriminative_right(model, lr, decay=2.6):
    layers = list(model.bert.encoder.layer)
    groups = [{"params": list(model.classifier.parameters()) + list(model.bert.pooler.parameters()),
               "lr": lr}]
    for depth, layer in enumerate(reversed(layers), 1):
        groups.append({"params": list(layer.parameters()), "lr": lr / decay**depth})
    groups.append({"params": list(model.bert.embeddings.parameters()),
                   "lr": lr / decay ** (len(layers) + 1)})
    return groups


def discriminative_wrong(model, lr, decay=2.6):  # one lr for all
    return [{"params": list(model.parameters()), "lr": lr}]


def align_right(word_ids, word_labels):
    out, previous = [], None
    for w in word_ids:
        out.append(-100 if w is None or w == previous else word_labels[w])
        previous = w
    return out


def align_wrong(word_ids, word_labels):  # labels every piece
    return [-100 if w is None else word_labels[w] for w in word_ids]


def pooling_right(hidden, mask):
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(1) / m.sum(1)


def pooling_wrong(hidden, mask):  # counts the padding
    return hidden.mean(1)


def budget_right(labels, n, seed):
    import random

    rng, classes = random.Random(seed), sorted(set(labels))
    by_class = {c: [i for i, y in enumerate(labels) if y == c] for c in classes}
    return [i for c in classes for i in rng.sample(by_class[c], n // len(classes))]


def budget_wrong(labels, n, seed):  # the first n rows: one class only
    return list(range(n))


def schedule_right(step, total, warmup, lr):
    if step < warmup:
        return lr * step / warmup
    return lr * max(0.0, (total - step) / (total - warmup))


def schedule_wrong(step, total, warmup, lr):  # decays from step 0, no warm-up
    return lr * (total - step) / total


def match_right(budgets, scratch, goal):
    reached = [b for b, acc in zip(budgets, scratch, strict=True) if acc >= goal]
    return min(reached) if reached else None


def match_wrong(budgets, scratch, goal):  # strict >, misses equality
    reached = [b for b, acc in zip(budgets, scratch, strict=True) if acc > goal]
    return min(reached) if reached else None


def mask_right(input_ids, mask_id, vocab_size, generator, p=0.15):
    # one draw per token decides both whether it is chosen and what it becomes
    draw = torch.rand(input_ids.shape, generator=generator)
    noise = torch.randint(vocab_size, input_ids.shape, generator=generator)
    labels = torch.where(draw < p, input_ids, -100)
    inputs = torch.where(draw < 0.8 * p, mask_id, input_ids)
    return torch.where((draw >= 0.8 * p) & (draw < 0.9 * p), noise, inputs), labels


def mask_wrong(input_ids, mask_id, vocab_size, generator, p=0.15):  # every chosen one: [MASK]
    labels, inputs = input_ids.clone(), input_ids.clone()
    chosen = torch.rand(input_ids.shape, generator=generator) < p
    labels[~chosen] = -100
    inputs[chosen] = mask_id
    return inputs, labels


def overlap_right(source_texts, target_texts):
    def p(texts):
        counts = Counter(w for text in texts for w in re.findall(r"\w+", text.lower()))
        return {w: c / sum(counts.values()) for w, c in counts.items()}

    p_S, p_T = p(source_texts), p(target_texts)
    return sum(min(p_S[w], p_T[w]) for w in p_S.keys() & p_T.keys())


def overlap_wrong(source_texts, target_texts):  # shared words, not their frequencies
    words = [set(re.findall(r"\w+", " ".join(t).lower())) for t in (source_texts, target_texts)]
    return len(words[0] & words[1]) / len(words[0] | words[1])


ANSWERS = {
    "ch1-label-budget": (budget_right, budget_wrong, "equally|4 of each"),
    "ch6-warmup-schedule": (schedule_right, schedule_wrong, "warm-up"),
    "ch8-labels-to-match": (match_right, match_wrong, "≥"),
    "ch2-mean-pooling": (pooling_right, pooling_wrong, "padding"),
    "ch3-cross-entropy": (cross_entropy_right, cross_entropy_wrong, "averaged"),
    "ch4-fresh-optimizer": (optimizer_right, optimizer_wrong, "another model"),
    "ch5-align-labels": (align_right, align_wrong, "later pieces"),
    "ch7-freeze-body": (freeze_right, freeze_wrong, "still train"),
    "ch7-word-overlap": (overlap_right, overlap_wrong, "frequency"),
    "ch7-discriminative-lr": (discriminative_right, discriminative_wrong, "2.6"),
    "ch7-mask-tokens": (mask_right, mask_wrong, "80 %"),
}


def test_every_check_has_answers():
    assert set(ANSWERS) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_right_answer_passes(name, capsys):
    assert check(name, ANSWERS[name][0]) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_wrong_answer_fails_and_says_why(name):
    with pytest.raises(ExerciseError, match=ANSWERS[name][2]):
        check(name, ANSWERS[name][1])


def test_unknown_exercise_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of: ch1-label-budget"):
        check("ch9-nope", F.relu)
