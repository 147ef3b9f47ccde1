"""fit() against transformers.Trainer and a bare PyTorch loop: same model, data, batches, steps.

    python -m benchmarks.throughput            # tiny BERT and MiniLM

Every arm trains the same weights on the same batches in the same order (the Trainer gets fit's
sampler), with the same optimizer (torch's fused AdamW, the Trainer's default), warmup and
clipping, for the same number of steps. Timing: one process per model runs the arms in turn,
round after round, each round in a new order, so drift in the machine's speed hits every arm
alike; reported are the medians and the ratios fit ÷ Trainer (examples/s, goal ≥ 1.0) and
fit ÷ bare loop (time, goal ≤ 1.15). Peak RSS: one fresh process per model and arm, all
side by side.
Last, in the timing process, the optimizer step alone: torch's per-tensor AdamW loop against the
fused kernel that fit now uses; and (tiny) a masked-LM step with the head on every token against
`MaskedTokensOnly`, which scores only the masked ones.
"""

from __future__ import annotations

import json
import time

import numpy as np

from .common import is_worker, median, save, worker, workers

SIZES = {"tiny": dict(steps=80, batch=32, rounds=5), "minilm": dict(steps=12, batch=16, rounds=3)}
ARMS = ("fit", "trainer", "bare")
LR, WARMUP, CLIP = 1e-4, 0.1, 1.0


def _data(model: str, n: int):
    """Return the tokenizer and n tokenized product reviews for a backbone (same for every arm)."""
    import transfer_lab as tl
    from transfer_lab.families.classification import encode_classification

    tl.quiet()
    tok = tl.load_tokenizer(model)
    return tok, encode_classification(tl.get_task("product_sentiment").load("train", n, 0), tok)


def _sampler(data):
    """Return a sampler drawing the order of fit's loader (seed 0), for the Trainer.

    A DataLoader given a generator first takes one number from it (its workers' base seed),
    then the sampler draws the permutation; this sampler does the same.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.utils.data.RandomSampler(data, generator=generator)


def train_arm(arm: str, model: str, steps: int, batch: int, tok, data) -> dict:
    """Train a fresh model `steps` steps through one arm; return its seconds and final loss."""
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, get_scheduler

    import transfer_lab as tl

    net = tl.build_model(model, seed=0, pretrained=model == "minilm")
    collate = DataCollatorWithPadding(tok)
    losses: list[float] = []
    start = time.perf_counter()
    if arm == "fit":
        config = tl.TrainConfig(lr=LR, max_steps=steps, batch_size=batch, warmup_ratio=WARMUP,
                                max_grad_norm=CLIP, eval_every=0, progress=False,
                                weight_decay=0.0)
        losses = [s["loss"] for s in tl.fit(net, data, config=config, collate_fn=collate).steps]
    elif arm == "trainer":
        class SameOrder(Trainer):
            def _get_train_sampler(self, train_dataset=None):
                return _sampler(train_dataset or self.train_dataset)

        args = TrainingArguments(output_dir="/tmp/bench-trainer", max_steps=steps,
                                 per_device_train_batch_size=batch, learning_rate=LR,
                                 warmup_steps=int(WARMUP * steps), lr_scheduler_type="linear",
                                 weight_decay=0.0, max_grad_norm=CLIP, logging_steps=1,
                                 save_strategy="no", report_to=[], disable_tqdm=True, seed=0,
                                 use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                                 log_level="error",
                                 accelerator_config={"use_seedable_sampler": False})
        trainer = SameOrder(model=net, args=args, train_dataset=data, data_collator=collate)
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    else:  # forward, backward, clip, step: nothing else
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True,
                                             generator=torch.Generator().manual_seed(0),
                                             collate_fn=collate)
        opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.0, fused=True)
        sched = get_scheduler("linear", opt, int(WARMUP * steps), steps)
        net.train()
        torch.manual_seed(0)  # as fit and the Trainer do: the same dropout masks
        for _, b in zip(range(steps), loader, strict=False):
            loss = net(**b).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(loss.item())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples_per_s": steps * batch / seconds,
            "first_loss": losses[0], "final_loss": float(np.mean(losses[-max(1, steps // 5):]))}


def timing(model: str, steps: int, batch: int, rounds: int) -> dict:
    """Run every arm `rounds` times in one process, rotating the order; return the runs per arm
    and, last, the optimizer step alone (`optimizer_step_ms`)."""
    import transfer_lab as tl

    tl.quiet()
    tok, data = _data(model, steps * batch)
    for arm in ARMS:  # warm-up: first-call costs (kernels, allocator) hit no timed run
        train_arm(arm, model, 3, batch, tok, data)
    runs = {arm: [] for arm in ARMS}
    for r in range(rounds):
        for arm in ARMS[r % 3:] + ARMS[:r % 3]:
            runs[arm].append(train_arm(arm, model, steps, batch, tok, data))
    out = {"runs": runs, "optimizer_step_ms": optimizer_step_ms(model)}
    if model == "tiny":
        out["mlm_step_ms"] = mlm_step_ms()
    return out


def mlm_step_ms(steps: int = 20, batch: int = 64, rounds: int = 3) -> dict:
    """Return ms per masked-LM training step: the head on every token, or on the masked ones.

    The masked-LM θ_S of chapters 2 and 5 trains through `MaskedTokensOnly` (same loss).
    """
    import torch

    import transfer_lab as tl
    from transfer_lab.data import world
    from transfer_lab.models import MaskedTokensOnly
    from transfer_lab.models.mlm import encode_mlm, mlm_collator

    tok = tl.load_tokenizer("tiny")
    data = encode_mlm(world.mlm_corpus(steps * batch, 0), tok, 32)
    collate = mlm_collator(tok, seed=0)
    batches = [collate([data[i] for i in range(j * batch, (j + 1) * batch)])
               for j in range(steps)]
    times = {"all_tokens": [], "masked_only": []}
    for _ in range(rounds):
        for name in times:
            net = tl.build_model("tiny", "mlm", seed=0)
            model = net if name == "all_tokens" else MaskedTokensOnly(net)
            opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
            model.train()
            start = time.perf_counter()
            for b in batches:
                model(**b).loss.backward()
                opt.step()
                opt.zero_grad()
            times[name].append(1000 * (time.perf_counter() - start) / steps)
    return {name: median(v) for name, v in times.items()}


def memory(arm: str, model: str, steps: int, batch: int) -> dict:
    """Return the peak RSS of a fresh process training a few steps through one arm."""
    from .common import peak_rss_mb

    tok, data = _data(model, steps * batch)
    train_arm(arm, model, steps, batch, tok, data)
    return {"peak_rss_mb": peak_rss_mb()}


def optimizer_step_ms(model: str, repeats: int = 10) -> dict:
    """Return ms per AdamW step on the model's weights: per-tensor loop against fused kernel."""
    import torch

    import transfer_lab as tl

    net = tl.build_model(model, seed=0, pretrained=model == "minilm")
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    out = {}
    for name, fused in (("per_tensor", None), ("fused", True)) * 2:  # second pass is kept
        opt = torch.optim.AdamW(net.parameters(), lr=LR, fused=fused)
        opt.step()
        start = time.perf_counter()
        for _ in range(repeats):
            opt.step()
        out[name] = 1000 * (time.perf_counter() - start) / repeats
    return out


def main() -> dict:
    """Time every arm on every model, measure memory; print and save the ratios."""
    out = {}
    timed = {model: worker("benchmarks.throughput", job="timing", model=model, **size)
             for model, size in SIZES.items()}
    # memory: one fresh process per model and arm, all side by side (contention changes time,
    # not RSS)
    jobs = [dict(job="memory", arm=arm, model=model, steps=3, batch=size["batch"])
            for model, size in SIZES.items() for arm in ARMS]
    peaks = {(j["model"], j["arm"]): p["peak_rss_mb"]
             for j, p in zip(jobs, workers("benchmarks.throughput", jobs), strict=True)}
    for model, size in SIZES.items():
        runs, step = timed[model]["runs"], timed[model]["optimizer_step_ms"]
        mlm = timed[model].get("mlm_step_ms")
        rss = {arm: peaks[model, arm] for arm in ARMS}
        med = {arm: {k: median([x[k] for x in v]) for k in v[0]} for arm, v in runs.items()}
        for arm in ARMS:
            med[arm]["peak_rss_mb"] = rss[arm]
        out[model] = {**size, "median": med, "runs": runs, "optimizer_step_ms": step,
                      **({"mlm_step_ms": mlm} if mlm else {}),
                      "fit_over_trainer_examples_per_s":
                          med["fit"]["examples_per_s"] / med["trainer"]["examples_per_s"],
                      "fit_over_bare_time": med["fit"]["seconds"] / med["bare"]["seconds"],
                      "final_loss_spread": max(m["final_loss"] for m in med.values())
                          - min(m["final_loss"] for m in med.values())}
        o = out[model]
        print(f"{model}: ex/s " + ", ".join(f"{a} {med[a]['examples_per_s']:.0f}" for a in ARMS)
              + f"; fit/Trainer = {o['fit_over_trainer_examples_per_s']:.2f} (goal >= 1.0); "
              f"fit/bare time = {o['fit_over_bare_time']:.2f} (goal <= 1.15); final losses "
              f"{[round(m['final_loss'], 3) for m in med.values()]}; peak RSS MiB "
              f"{[round(rss[a]) for a in ARMS]}; AdamW step {step['per_tensor']:.1f} ms "
              f"per-tensor, {step['fused']:.1f} ms fused"
              + (f"; masked-LM step {mlm['all_tokens']:.1f} ms scoring every token, "
                 f"{mlm['masked_only']:.1f} ms the masked ones" if mlm else ""))
    save("throughput", {"models": out})
    return out


if __name__ == "__main__":
    args = is_worker()
    if args is not None:
        job = args.pop("job")
        print(json.dumps({"timing": timing, "memory": memory}[job](**args)))
    else:
        main()
