"""Pad-to-max against dynamic padding against length-grouped batches (examples per second).

    python -m benchmarks.padding

Two length distributions: the world's reviews, and a long-tailed one (several reviews glued
together, lengths log-normal). Same tiny model, batch size and number of training steps. Also
evaluation (batches of 128, dynamic padding): in the data's order against longest first, the
order `evaluate` now uses.
"""

from __future__ import annotations

import random
import time

import torch
from transformers import DataCollatorWithPadding

from .common import median, save

SCHEMES = ("pad_to_max", "dynamic", "dynamic+grouped")


def texts(distribution: str, n: int) -> list[str]:
    """Return n training texts with the world's or a long-tailed length distribution."""
    from transfer_lab.data import world

    reviews = [e.text for e in world.sentiment("products", 4 * n, 0)]
    if distribution == "world":
        return reviews[:n]
    rng = random.Random(0)
    return [" ".join(rng.sample(reviews, min(12, max(1, int(rng.lognormvariate(0, 0.9))))))
            for _ in range(n)]


def throughput(scheme: str, data, tok, batch: int, max_length: int, steps: int) -> float:
    """Return training examples per second of the tiny model under one batching scheme."""
    import transfer_lab as tl

    net = tl.build_model("tiny", seed=0)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
    if scheme == "pad_to_max":
        collate = DataCollatorWithPadding(tok, padding="max_length", max_length=max_length)
    else:
        collate = DataCollatorWithPadding(tok)
    loader = tl.training.loader(data, batch, collate, shuffle=True, seed=0,
                             group_by_length=scheme.endswith("grouped"))  # what fit() uses
    net.train()
    start = time.perf_counter()
    for _, b in zip(range(steps), loader, strict=False):
        net(**b).loss.backward()
        opt.step()
        opt.zero_grad()
    return steps * batch / (time.perf_counter() - start)


@torch.inference_mode()
def evaluation(data, tok, by_length: bool, batch: int = 128) -> float:
    """Return examples per second of the tiny model's forward passes over `data`."""
    import transfer_lab as tl

    net = tl.build_model("tiny", seed=0).eval()
    start = time.perf_counter()
    for b in tl.training.loader(data, batch, DataCollatorWithPadding(tok), by_length=by_length):
        net(**b)
    return len(data) / (time.perf_counter() - start)


def main(repeats: int = 3, batch: int = 32, steps: int = 30) -> dict:
    """Measure every scheme on both distributions, interleaved; print and save the ratios."""
    from datasets import Dataset

    import transfer_lab as tl
    from transfer_lab.families.classification import encode_classification

    tl.quiet()
    tok = tl.load_tokenizer("tiny")
    out = {}
    for dist, max_length in (("world", 64), ("long_tailed", 128)):
        t = texts(dist, batch * steps)
        data = encode_classification(Dataset.from_dict({"text": t, "label": [0] * len(t)}), tok,
                                     max_length)
        lengths = [len(x) for x in data["input_ids"]]
        runs, evals = {s: [] for s in SCHEMES}, {False: [], True: []}
        for _ in range(repeats):
            for s in SCHEMES:
                runs[s].append(throughput(s, data, tok, batch, max_length, steps))
            for order in (False, True):
                evals[order].append(evaluation(data, tok, by_length=order))
        med = {s: median(v) for s, v in runs.items()}
        ev = {"in_order": median(evals[False]), "longest_first": median(evals[True])}
        out[dist] = {"max_length": max_length, "mean_tokens": sum(lengths) / len(lengths),
                     "examples_per_s": med,
                     "dynamic_over_max": med["dynamic"] / med["pad_to_max"],
                     "grouped_over_max": med["dynamic+grouped"] / med["pad_to_max"],
                     "eval_examples_per_s": ev,
                     "eval_longest_first_over_in_order": ev["longest_first"] / ev["in_order"]}
        print(f"{dist}: mean {out[dist]['mean_tokens']:.1f} tokens (max {max_length}); ex/s "
              + ", ".join(f"{s} {v:.0f}" for s, v in med.items())
              + f"; grouped / pad-to-max = {out[dist]['grouped_over_max']:.2f} (goal >= 1.5); "
              f"evaluation longest-first / in order = "
              f"{out[dist]['eval_longest_first_over_in_order']:.2f}")
    save("padding", {"batch": batch, "steps": steps, "repeats": repeats, "distributions": out})
    return out


if __name__ == "__main__":
    main()
