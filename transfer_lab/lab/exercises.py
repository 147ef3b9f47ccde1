"""Exercises that check themselves: `check("ch7-discriminative-lr", my_function)`.

Each check runs the student's function on small inputs (a tiny BERT, random tensors) and
compares its behaviour with what the chapter teaches. A wrong answer raises `ExerciseError`
with a sentence that says what is wrong; a right one returns True and prints a tick.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from transfer_lab.validate import InputError


class ExerciseError(AssertionError):
    """A student's answer does not behave as the exercise asks."""


def _expect(ok: bool, message: str) -> None:
    """Raise ExerciseError(message) unless ok."""
    if not ok:
        raise ExerciseError(message)


def _tiny_bert(layers: int = 3, seed: int = 0) -> BertForSequenceClassification:
    """Return a very small BERT classifier (hidden 16) for exercising code quickly."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    return BertForSequenceClassification(config)


def check_cross_entropy(fn: Callable) -> None:
    """ch3: fn(logits, labels) returns the mean cross-entropy L_T, as a scalar tensor."""
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
    out = fn(logits, labels)
    _expect(torch.is_tensor(out) and out.ndim == 0, "return one number (a 0-d tensor), the mean "
            "over the batch")
    _expect(torch.allclose(out, F.cross_entropy(logits, labels), atol=1e-5),
            f"got {float(out):.4f}, expected {float(F.cross_entropy(logits, labels)):.4f}: "
            "use -log softmax(logits)[label], averaged over the batch")


def check_fresh_optimizer(fn: Callable) -> None:
    """ch4: fn(model, lr) returns an optimizer that updates exactly this model's parameters."""
    target = _tiny_bert(seed=1)
    opt = fn(target, 1e-2)
    ids = {id(p) for group in opt.param_groups for p in group["params"]}
    _expect(ids <= {id(p) for p in target.parameters()}, "the optimizer holds another model's "
            "parameters (the seed's bug: reusing the source's optimizer); build a fresh one")
    _expect({id(p) for p in target.parameters()} <= ids, "some of the target model's parameters "
            "are missing from the optimizer: pass model.parameters()")
    before = target.classifier.weight.detach().clone()
    target(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([1])).loss.backward()
    opt.step()
    _expect(not torch.equal(before, target.classifier.weight), "one step did not change the "
            "target's weights")


def check_freeze_body(fn: Callable) -> None:
    """ch7: fn(model) freezes the body so that only the classification head trains."""
    model = _tiny_bert()
    fn(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    body = sorted(n for n in trainable if not n.startswith("classifier"))
    _expect(not body, f"these body parameters still train: {body[:3]}; set requires_grad=False")
    _expect({"classifier.weight", "classifier.bias"} <= trainable, "the head must stay trainable")


def check_word_overlap(fn: Callable) -> None:
    """ch7: fn(source_texts, target_texts) returns Σ_w min(p_S(w), p_T(w)) over word shares."""
    from transfer_lab.lab.transferability import vocabulary_overlap

    cases = [(["a good film"], ["a good film"], "the same texts must overlap 1"),
             (["a good film"], ["the dull meal"], "texts that share no word must overlap 0"),
             (["good good film"], ["good film film film"], ("use each word's share of all the "
              "words (its frequency), not whether it occurs")),
             (["Good, GOOD film!"], ["good film"], ("lower-case the words and drop punctuation: "
              "re.findall(r\"\\w+\", text.lower())")),
             (["good film", "bad film"], ["good"], "count the words of all the texts together")]
    for source, target, hint in cases:
        got, want = float(fn(source, target)), vocabulary_overlap(source, target)
        _expect(abs(got - want) < 1e-9, f"got {got:.4f}, expected {want:.4f}: {hint}")


def check_discriminative_lr(fn: Callable) -> None:
    """ch7: fn(model, lr, decay=2.6) returns AdamW groups, lr / decay per layer going down."""
    model = _tiny_bert(layers=3)
    groups = fn(model, 1e-3, 2.6)
    lr_of = {}
    for g in groups:
        for p in g["params"]:
            lr_of[id(p)] = g["lr"]
    named = dict(model.named_parameters())
    _expect(set(lr_of) >= {id(p) for p in named.values()}, "every parameter needs a group")
    top = lr_of[id(named["classifier.weight"])]
    _expect(abs(top - 1e-3) < 1e-12, f"the head's lr is {top}, expected lr itself (1e-3)")
    layer = [lr_of[id(named[f"bert.encoder.layer.{i}.output.dense.weight"])] for i in range(3)]
    emb = lr_of[id(named["bert.embeddings.word_embeddings.weight"])]
    rates = [emb, *layer]
    ratios = [b / a for a, b in zip(rates, rates[1:], strict=False)]
    _expect(all(abs(r - 2.6) < 1e-6 for r in ratios), "each layer's lr must be the next layer's "
            f"divided by 2.6 (embeddings lowest); ratios were {[round(r, 3) for r in ratios]}")
    _expect(abs(layer[-1] - 1e-3 / 2.6) < 1e-12, "the top encoder layer gets lr / 2.6")


def check_align_labels(fn: Callable) -> None:
    """ch5: fn(word_ids, word_labels) labels the first piece of each word, -100 elsewhere."""
    word_ids = [None, 0, 1, 1, 2, 2, 2, None]
    got = fn(word_ids, [3, 1, 2])
    _expect(got == [-100, 3, 1, -100, 2, -100, -100, -100], f"got {got}; the first piece of a "
            "word gets its label, later pieces and special tokens (None) get -100")


def check_mean_pooling(fn: Callable) -> None:
    """ch2: fn(hidden, attention_mask) averages token vectors, ignoring padding."""
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 4, 3, generator=g)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    want = torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)])
    got = fn(hidden, mask)
    _expect(tuple(got.shape) == (2, 3), f"shape {tuple(got.shape)}, expected (batch, hidden)")
    _expect(torch.allclose(got, want, atol=1e-6), "padding (mask 0) must not count in the mean")


def check_label_budget(fn: Callable) -> None:
    """ch1: fn(labels, n, seed) picks n examples, the same number from every class, seeded."""
    labels = [0] * 30 + [1] * 10 + [2] * 20
    picked = fn(labels, 12, 0)
    _expect(len(picked) == 12 and len(set(picked)) == 12, f"got {len(picked)} indices "
            f"({len(set(picked))} different); pick n different examples")
    _expect(all(0 <= i < len(labels) for i in picked), "indices must point into labels")
    counts = sorted(sum(labels[i] == c for i in picked) for c in range(3))
    _expect(counts == [4, 4, 4], f"classes were picked {counts} times; a budget of 12 over 3 "
            "classes is 4 of each (sample within each class, not from the whole list)")
    _expect(sorted(fn(labels, 12, 0)) == sorted(picked), "the same seed must pick the same "
            "examples (use random.Random(seed), not the global generator)")
    _expect(sorted(fn(labels, 12, 1)) != sorted(picked), "another seed should pick other examples")


def check_warmup_schedule(fn: Callable) -> None:
    """ch6: fn(step, total, warmup, lr) is the linear warm-up then linear decay of Transformers."""
    from transformers import get_linear_schedule_with_warmup

    total, warmup, lr = 20, 4, 1e-3
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    for step in range(total + 1):
        want, got = sched.get_last_lr()[0], fn(step, total, warmup, lr)
        _expect(abs(float(got) - want) < 1e-9, f"at step {step} the lr is {got}, expected "
                f"{want:.6g}: rise from 0 to lr over the warm-up steps, then fall to 0 at total")
        opt.step()
        sched.step()


def check_labels_to_match(fn: Callable) -> None:
    """ch8: fn(budgets, scratch, goal): the fewest labels where scratch reaches goal (or None)."""
    budgets, scratch = [16, 64, 256, 1024], [0.52, 0.55, 0.71, 0.90]
    cases = [(0.70, 256), (0.55, 64), (0.50, 16), (0.95, None), (0.90, 1024)]
    for goal, want in cases:
        got = fn(budgets, scratch, goal)
        _expect(got == want, f"for goal {goal} you returned {got}, expected {want}: the smallest "
                "budget whose accuracy reaches the goal (≥), None when none does")
    _expect(fn([64, 16], [0.8, 0.6], 0.6) == 16, "budgets may come unsorted: look at all of them")


def check_mask_tokens(fn: Callable) -> None:
    """ch7: fn(input_ids, mask_id, vocab_size, generator) masks as BERT: (inputs, labels)."""
    ids = torch.randint(5, 1000, (64, 128), generator=torch.Generator().manual_seed(0))
    original = ids.clone()
    out = fn(ids, 4, 1000, torch.Generator().manual_seed(1))
    _expect(isinstance(out, tuple) and len(out) == 2, "return two tensors: (inputs, labels)")
    inputs, labels = out
    _expect(torch.equal(ids, original), "input_ids changed in place: work on a copy (.clone())")
    _expect(inputs.shape == ids.shape == labels.shape, "inputs and labels have input_ids' shape")
    chosen = labels != -100
    _expect(0.13 < chosen.float().mean() < 0.17, f"{chosen.float().mean():.1%} of the tokens are "
            "chosen (labels other than -100); BERT chooses 15 % of them")
    _expect(torch.equal(labels[chosen], ids[chosen]), "a chosen position's label is the original "
            "token (the model must predict it); every other label is -100 (no loss there)")
    _expect(torch.equal(inputs[~chosen], ids[~chosen]), "a token that is not chosen stays as it is")
    masked, kept = (float((chosen & m).sum() / chosen.sum()) for m in (inputs == 4, inputs == ids))
    _expect(0.75 < masked < 0.85 and 0.07 < kept < 0.13, f"of the chosen tokens {masked:.0%} "
            f"became [MASK] and {kept:.0%} stayed: BERT's rule is 80 % [MASK], 10 % a random "
            "token, 10 % unchanged (so the model must also judge the tokens it can see)")


CHECKS: dict[str, Callable[[Callable], None]] = {
    "ch1-label-budget": check_label_budget,
    "ch2-mean-pooling": check_mean_pooling,
    "ch3-cross-entropy": check_cross_entropy,
    "ch4-fresh-optimizer": check_fresh_optimizer,
    "ch5-align-labels": check_align_labels,
    "ch7-freeze-body": check_freeze_body,
    "ch7-word-overlap": check_word_overlap,
    "ch6-warmup-schedule": check_warmup_schedule,
    "ch7-discriminative-lr": check_discriminative_lr,
    "ch7-mask-tokens": check_mask_tokens,
    "ch8-labels-to-match": check_labels_to_match,
}


def check(name: str, fn: Callable) -> bool:
    """Run the check called `name` on the student's function; True, or ExerciseError saying why."""
    if name not in CHECKS:
        raise InputError(f"unknown exercise {name!r}; choose one of: {', '.join(CHECKS)}")
    CHECKS[name](fn)
    print(f"✓ {name}: correct")
    return True
