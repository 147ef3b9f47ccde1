"""fit() against transformers.Trainer and a bare PyTorch loop: same model, data, batches, steps.

    python -m benchmarks.throughput            # tiny BERT and MiniLM, 3 interleaved repeats

Each arm runs in a fresh process (fair peak RSS); repeats are interleaved so drift in the
machine's speed hits every arm alike. Reported: median examples/s, the ratios fit ÷ Trainer
(goal ≥ 1.0) and time of fit ÷ bare loop (goal ≤ 1.15), peak RSS, final loss of each arm.
"""

from __future__ import annotations

import json
import time

import numpy as np

from .common import is_worker, median, peak_rss_mb, save, worker

SIZES = {"tiny": dict(steps=80, batch=32), "minilm": dict(steps=12, batch=16)}
ARMS = ("fit", "trainer", "bare")


def _data(model: str, n: int):
    """Return tokenized film reviews for a backbone (the same for every arm)."""
    import transfer_lab as tl
    from transfer_lab.encode import encode_classification

    tl.quiet()
    tok = tl.load_tokenizer(model)
    return tok, encode_classification(tl.get_task("product_sentiment").load("train", n, 0), tok)


def run_arm(arm: str, model: str, steps: int, batch: int) -> dict:
    """Train `steps` steps with one arm and return its seconds, final loss and peak RSS."""
    import torch
    from transformers import DataCollatorWithPadding, get_scheduler

    import transfer_lab as tl

    tok, data = _data(model, steps * batch)
    net = tl.build_model(model, seed=0, pretrained=model == "minilm")
    collate = DataCollatorWithPadding(tok)
    config = tl.TrainConfig(lr=1e-4, max_steps=steps, batch_size=batch, warmup_ratio=0.1,
                            eval_every=0, progress=False, weight_decay=0.0)
    losses: list[float] = []
    start = time.perf_counter()
    if arm == "fit":
        history = tl.fit(net, data, config=config, collate_fn=collate)
        losses = [s["loss"] for s in history.steps]
    elif arm == "trainer":
        from transformers import Trainer, TrainingArguments

        args = TrainingArguments(output_dir="/tmp/bench-trainer", max_steps=steps,
                                 per_device_train_batch_size=batch, learning_rate=1e-4,
                                 warmup_steps=int(0.1 * steps), lr_scheduler_type="linear",
                                 weight_decay=0.0, max_grad_norm=1.0, logging_steps=1,
                                 save_strategy="no", report_to=[], disable_tqdm=True, seed=0,
                                 use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
        trainer = Trainer(model=net, args=args, train_dataset=data, data_collator=collate)
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    else:
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True,
                                             collate_fn=collate,
                                             generator=torch.Generator().manual_seed(0))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
        sched = get_scheduler("linear", opt, int(0.1 * steps), steps)
        net.train()
        for _, batch_ in zip(range(steps), loader, strict=False):
            loss = net(**batch_).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(loss.item())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples_per_s": steps * batch / seconds,
            "final_loss": float(np.mean(losses[-max(1, steps // 5):])),
            "peak_rss_mb": peak_rss_mb()}


def main(repeats: int = 3) -> dict:
    """Run every arm on every model, interleaved, and print and save the ratios."""
    out = {}
    for model, size in SIZES.items():
        runs = {arm: [] for arm in ARMS}
        for r in range(repeats):
            for arm in ARMS:
                runs[arm].append(worker("benchmarks.throughput", arm=arm, model=model, **size))
                print(f"{model} repeat {r} {arm}: {runs[arm][-1]['examples_per_s']:.1f} ex/s")
        med = {arm: {k: median([x[k] for x in v]) for k in v[0]} for arm, v in runs.items()}
        out[model] = {**size, "repeats": repeats, "median": med,
                      "fit_over_trainer_examples_per_s":
                          med["fit"]["examples_per_s"] / med["trainer"]["examples_per_s"],
                      "fit_over_bare_time": med["fit"]["seconds"] / med["bare"]["seconds"],
                      "final_loss_spread": max(m["final_loss"] for m in med.values())
                          - min(m["final_loss"] for m in med.values())}
        o = out[model]
        print(f"{model}: fit/Trainer examples/s = {o['fit_over_trainer_examples_per_s']:.2f} "
              f"(goal >= 1.0); fit/bare time = {o['fit_over_bare_time']:.2f} (goal <= 1.15); "
              f"final losses {[round(m['final_loss'], 3) for m in med.values()]}; peak RSS MiB "
              f"{[round(m['peak_rss_mb']) for m in med.values()]}")
    save("throughput", {"models": out})
    return out


if __name__ == "__main__":
    args = is_worker()
    if args is not None:
        print(json.dumps(run_arm(**args)))
    else:
        main()
