"""SmolLM2-135M-Instruct with LoRA: fit() against transformers.Trainer and a bare PyTorch loop.

    python -m benchmarks.llm

The model of the decoder chapter (LoRA r=8 on q/k/v/o, lr 5e-4, batch 8) learns film reviews in the
causal family's chat encoding (chat prompt + answer token, the loss on the answer token alone, its
collator that packs a batch into one row, the prompts' shared start once). Every arm trains the same
weights (one load, copied, LoRA seeded) on the same batches in the same order (the Trainer gets
fit's sampler) with the same optimizer (fused AdamW, weight decay 0.01), linear warmup schedule and
clipping. Timing: one process runs the arms in turn, round after round, each round in a new order,
so drift in the machine's speed hits every arm alike; an untimed run first warms the process
(without it, whichever arm ran first was the slowest of its runs); the first step of every run is
warm-up, the speed counts the steps after it. Reported: examples/s and tokens/s of each arm, fit ÷
Trainer (examples/s, goal ≥ 1.0) and fit ÷ bare loop (time, goal ≤ 1.15), per round and as medians,
in wall time and in the process's CPU time; CPU ÷ wall time (≈ the 2 threads when the arm had the
machine to itself) shows how much other jobs took; the share of the matmul roof (the FLOP/s of one
large matmul, `efficiency.matmul_flops`, measured in the same process before and after the rounds,
the better of the two). A 2-step run of each arm under torch's profiler counts the work itself: the
aten calls, the matmuls and their self CPU seconds, which no drift in the machine's speed changes. A
LoRA step costs ≈ 4 × parameters × tokens FLOPs: forward 2, backward through the activations 2, no
weight gradients for the frozen weights (the adapters' own and attention's score matmuls are left
out). The body's weights count at every token the model computes (the packed rows: the shared
start once a batch), the tied LM head only at the positions whose logits are kept (two an example);
the embedding lookup costs none. tokens/s counts the tokens the examples hold (each prompt whole),
the work a padded batch would do without its pads.
Peak RSS: one fresh process per arm (and one that only loads), all side by side. Load time:
`smollm2.load_smollm2()` in fresh processes on an empty temp TRANSFER_LAB_CACHE (the GGUF file is
dequantized and cached), then twice more on that cache (goal: cached ≤ 3 s).
"""

from __future__ import annotations

import copy
import gc
import json
import os
import shutil
import tempfile
import time

from .common import is_worker, median, save, worker, workers

SIZE = dict(steps=6, batch=8, rounds=6)  # step 1 of every run is warm-up; each order twice
ARMS = ("fit", "trainer", "bare")
LR, WARMUP, CLIP, DECAY = 5e-4, 0.1, 1.0, 0.01
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
FLOPS_PER_PARAMETER_TOKEN = 4  # LoRA: forward 2 + backward through activations 2
CACHED_LOAD_GOAL_S = 3.0


def encode(tokenizer, n: int):
    """Return n film reviews in the causal family's encoding (prompt + answer token)."""
    import transfer_lab as tl
    from transfer_lab.families.causal import CausalLM

    task = tl.get_task("film_sentiment")
    # the chat template (the family's prompt when these results were measured): its shared start
    # (system message) is what packing computes once a batch
    return CausalLM(template="chat").encode(task.load("train", n), tokenizer, task,
                                            max_length=128)


def collator(tokenizer):
    """Return the causal family's collator (a batch packed into one row, the answers' labels)."""
    from transfer_lab.families.causal import CausalLM

    return CausalLM().collator(tokenizer)


def with_lora(base, keep_base: bool = True):
    """Return `base` with seeded LoRA adapters (r=8 on q/k/v/o), as the family builds it.

    `keep_base` wraps a copy, so the next run starts from the same weights; without it peft
    wraps `base` itself (the memory of one model, as in the family).
    """
    import torch

    from transfer_lab.models import smollm2

    net = copy.deepcopy(base) if keep_base else base
    torch.manual_seed(0)
    return smollm2.lora(net, r=8, alpha=16, target_modules=TARGETS)


def _sampler(data):
    """Return a sampler drawing the order of fit's loader (seed 0), for the Trainer."""
    from .throughput import _sampler as fit_order

    return fit_order(data)


def train_arm(arm: str, net, data, collate, steps: int, batch: int) -> dict:
    """Train `net` `steps` steps through one arm; return its seconds, speed and losses.

    `seconds` is the whole call (the arm's set-up included); `examples_per_s` counts the steps
    after the first, between the end of step 1 and the end of the last step;
    `steady_cpu_seconds` is this process's CPU time (all threads) over the same steps.
    """
    import torch
    from transformers import (
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        get_scheduler,
    )

    import transfer_lab as tl

    if steps < 2:
        raise ValueError(f"steps={steps}: the first step is warm-up; time at least 2")
    ends: list[tuple[float, float]] = []  # (wall, CPU) seconds at the end of each step

    def tick() -> None:
        ends.append((time.perf_counter(), time.process_time()))

    start = time.perf_counter()
    if arm == "fit":
        class FitClock(tl.Callback):
            def on_step_end(self, state):
                tick()

        config = tl.TrainConfig(lr=LR, max_steps=steps, batch_size=batch, warmup_ratio=WARMUP,
                                max_grad_norm=CLIP, weight_decay=DECAY, eval_every=0,
                                progress=False)
        history = tl.fit(net, data, config=config, collate_fn=collate, callbacks=[FitClock()])
        losses = [s["loss"] for s in history.steps]
    elif arm == "trainer":
        class TrainerClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                tick()

        class SameOrder(Trainer):
            def _get_train_sampler(self, train_dataset=None):
                return _sampler(train_dataset or self.train_dataset)

        with tempfile.TemporaryDirectory(prefix="bench-llm-trainer-") as out:
            args = TrainingArguments(output_dir=out, max_steps=steps,
                                     per_device_train_batch_size=batch, learning_rate=LR,
                                     warmup_steps=int(WARMUP * steps), lr_scheduler_type="linear",
                                     weight_decay=DECAY, max_grad_norm=CLIP, logging_steps=1,
                                     save_strategy="no", eval_strategy="no", report_to=[],
                                     disable_tqdm=True, seed=0, use_cpu=True,
                                     dataloader_num_workers=0, log_level="error",
                                     remove_unused_columns=False,
                                     accelerator_config={"use_seedable_sampler": False})
            trainer = SameOrder(model=net, args=args, train_dataset=data, data_collator=collate,
                                callbacks=[TrainerClock()])
            trainer.remove_callback(PrinterCallback)  # as fit's progress=False: no printing
            trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    elif arm == "bare":  # forward, backward, clip, step: nothing else
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True,
                                             generator=torch.Generator().manual_seed(0),
                                             collate_fn=collate)
        trainable = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=LR, weight_decay=DECAY, fused=True)
        sched = get_scheduler("linear", opt, int(WARMUP * steps), steps)
        net.train()
        torch.manual_seed(0)
        losses = []
        for _, b in zip(range(steps), loader, strict=False):
            loss = net(**b).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, CLIP)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            tick()
    else:
        raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(ARMS)}")
    seconds = time.perf_counter() - start
    if len(ends) != steps:
        raise RuntimeError(f"{arm} ran {len(ends)} steps, not {steps}")
    steady = ends[-1][0] - ends[0][0]
    return {"seconds": seconds, "steady_seconds": steady,
            "steady_cpu_seconds": ends[-1][1] - ends[0][1],
            "examples_per_s": (steps - 1) * batch / steady,
            "first_loss": losses[0], "last_loss": losses[-1]}


def _model(name: str):
    """Return (base model, tokenizer): SmolLM2 from the cache, or a tiny random Llama (tests)."""
    from transfer_lab.models import smollm2

    if name == "smollm2":
        return smollm2.load_smollm2()
    if name == "tiny":
        tokenizer = smollm2.load_smollm2_tokenizer()
        return smollm2.tiny_llama(tokenizer), tokenizer
    raise ValueError(f"unknown model {name!r}; choose smollm2 or tiny")


def timing(steps: int, batch: int, rounds: int, model: str = "smollm2",
           cache: str | None = None) -> dict:
    """Run every arm `rounds` times in one process, rotating the order; return the runs per arm,
    the tokens of the timed steps, the parameter counts and the matmul roof."""
    import transfer_lab as tl
    from transfer_lab.models import smollm2
    from transfer_lab.training.loop import loader

    from .efficiency import matmul_flops

    if cache:
        os.environ["TRANSFER_LAB_CACHE"] = cache
    tl.quiet()
    base, tokenizer = _model(model)
    data, collate = encode(tokenizer, steps * batch), collator(tokenizer)
    timed = [b for _, b in zip(range(steps), loader(data, batch, list, shuffle=True, seed=0),
                               strict=False)][1:]  # fit's examples after the warm-up step
    lengths = [len(ids) for ids in data["input_ids"]]
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    roof = matmul_flops()  # measured before and after the rounds: the better is the roof
    train_arm("bare", with_lora(base), data, collate, 2, batch)  # untimed: warms the allocator
    gc.collect()
    for r in range(rounds):
        for arm in ARMS[r % 3:] + ARMS[:r % 3]:
            net = with_lora(base)
            runs[arm].append({"round": r, **train_arm(arm, net, data, collate, steps, batch)})
            del net
            gc.collect()
    counts = smollm2.trainable_parameters(with_lora(base))
    packed = [collate(b) for b in timed]
    ops = {arm: operations(arm, with_lora(base), data, collate, batch) for arm in ARMS}
    return {"runs": runs, "ops": ops, "model": model, "steps": steps, "batch": batch,
            "rounds": rounds,
            "tokens": sum(len(x["input_ids"]) for b in timed for x in b),
            "computed_tokens": sum(b["input_ids"].numel() for b in packed),
            "kept_positions": sum(b["logits_to_keep"].numel() for b in packed),
            "length": {"min": min(lengths), "mean": sum(lengths) / len(lengths),
                       "max": max(lengths)},
            "parameters": sum(p.numel() for p in base.parameters()),
            "head_parameters": base.get_output_embeddings().weight.numel(),
            "trainable": counts["trainable"], "matmul_flops_per_s": max(roof, matmul_flops())}


def operations(arm: str, net, data, collate, batch: int) -> dict:
    """Return what torch's profiler counts in a 2-step run of one arm: the aten calls, the
    matmuls and their self CPU seconds (the same work in every arm, whatever the clock says)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_arm(arm, net, data, collate, 2, batch)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    mm = [e for e in events if e.key in ("aten::mm", "aten::bmm", "aten::addmm")]
    return {"aten_calls": sum(e.count for e in events), "matmul_calls": sum(e.count for e in mm),
            "self_cpu_seconds": sum(e.self_cpu_time_total for e in events) / 1e6,
            "matmul_self_cpu_seconds": sum(e.self_cpu_time_total for e in mm) / 1e6}


def memory(arm: str, steps: int, batch: int, cache: str, model: str = "smollm2") -> dict:
    """Return the peak RSS of a fresh process that loads the model and trains through one arm
    (arm "load": loads and encodes only)."""
    import transfer_lab as tl

    from .common import peak_rss_mb

    os.environ["TRANSFER_LAB_CACHE"] = cache
    tl.quiet()
    base, tokenizer = _model(model)
    data = encode(tokenizer, steps * batch)
    if arm != "load":
        train_arm(arm, with_lora(base, keep_base=False), data, collator(tokenizer), steps, batch)
    return {"peak_rss_mb": peak_rss_mb()}


def load(cache: str) -> dict:
    """Return the seconds of `smollm2.load_smollm2()` in this process, on the cache folder `cache`
    (empty: it dequantizes the GGUF file and caches a safetensors copy first)."""
    os.environ["TRANSFER_LAB_CACHE"] = cache
    from transfer_lab.models import smollm2

    cold = not (smollm2.smollm2_cache() / "config.json").exists()
    start = time.perf_counter()
    model, _ = smollm2.load_smollm2()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "from_gguf": cold,
            "parameters": sum(p.numel() for p in model.parameters())}


def summarize(timed: dict, loads: dict | None = None, peaks: dict | None = None) -> dict:
    """Return the medians, ratios (overall and per round), tokens/s and share of the matmul roof
    of a `timing` result, with the load seconds and peak RSS when given."""
    runs = timed["runs"]
    med = {arm: {k: median([x[k] for x in v]) for k in v[0] if k != "round"}
           for arm, v in runs.items()}
    timed_steps = timed["steps"] - 1
    body = timed["parameters"] - timed["head_parameters"]  # the LM head is tied to the embedding
    flops_per_step = (FLOPS_PER_PARAMETER_TOKEN * (body * timed["computed_tokens"]
                                                   + timed["head_parameters"]
                                                   * timed["kept_positions"])
                      / timed_steps)
    for arm, m in med.items():
        m["tokens_per_s"] = timed["tokens"] / m["steady_seconds"]
        m["computed_tokens_per_s"] = timed["computed_tokens"] / m["steady_seconds"]
        m["seconds_per_step"] = m["steady_seconds"] / timed_steps
        m["cpu_over_wall"] = m["steady_cpu_seconds"] / m["steady_seconds"]  # threads busy
        m["flops_per_s"] = flops_per_step / m["seconds_per_step"]
        m["fraction_of_matmul"] = m["flops_per_s"] / timed["matmul_flops_per_s"]
        if peaks:
            m["peak_rss_mb"] = peaks[arm]
    per_round = {  # the arms of one round ran minutes apart at most: the fairest pairs
        "fit_over_trainer_examples_per_s": [f["examples_per_s"] / t["examples_per_s"] for f, t
                                            in zip(runs["fit"], runs["trainer"], strict=True)],
        "fit_over_bare_time": [f["steady_seconds"] / b["steady_seconds"] for f, b
                               in zip(runs["fit"], runs["bare"], strict=True)],
        **{f"fit_over_{other}_cpu_time": [f["steady_cpu_seconds"] / o["steady_cpu_seconds"]
                                          for f, o in zip(runs["fit"], runs[other], strict=True)]
           for other in ("trainer", "bare")}}
    spread = {arm: (max(x["examples_per_s"] for x in v) - min(x["examples_per_s"] for x in v))
              / med[arm]["examples_per_s"] for arm, v in runs.items()}
    first = [m["first_loss"] for m in med.values()]
    out = {key: timed[key] for key in ("model", "steps", "batch", "rounds", "tokens",
                                       "computed_tokens", "kept_positions", "length", "parameters",
                                       "head_parameters", "trainable",
                                       "matmul_flops_per_s", "ops")}
    ops = timed["ops"]
    out["fit_over_trainer_ops"] = {key: ops["fit"][key] / ops["trainer"][key]
                                   for key in ops["fit"]}
    out.update({"flops_per_step": flops_per_step, "median": med, "runs": runs,
                "fit_over_trainer_examples_per_s":
                    med["fit"]["examples_per_s"] / med["trainer"]["examples_per_s"],
                "fit_over_bare_time": med["fit"]["steady_seconds"] / med["bare"]["steady_seconds"],
                **{f"fit_over_{other}_cpu_time": med["fit"]["steady_cpu_seconds"]
                   / med[other]["steady_cpu_seconds"] for other in ("trainer", "bare")},
                "per_round": per_round, "examples_per_s_spread": spread,
                "first_loss_spread": max(first) - min(first)})
    if peaks:
        out["peak_rss_mb"] = peaks
    if loads:
        out["load"] = loads
    return out


def main() -> dict:
    """Time SmolLM2's load and every arm's LoRA steps, measure memory; print and save."""
    cache = tempfile.mkdtemp(prefix="bench-llm-cache-")
    try:
        first = worker("benchmarks.llm", job="load", cache=cache)
        cached = [worker("benchmarks.llm", job="load", cache=cache) for _ in range(2)]
        loads = {"from_gguf_seconds": first["seconds"],
                 "cached_seconds": median([c["seconds"] for c in cached]),
                 "cached_runs": [c["seconds"] for c in cached],
                 "cached_goal_seconds": CACHED_LOAD_GOAL_S}
        timed = worker("benchmarks.llm", job="timing", cache=cache, **SIZE)
        # memory: one fresh process per arm, all side by side (contention changes time, not RSS)
        jobs = [dict(job="memory", arm=arm, steps=2, batch=SIZE["batch"], cache=cache)
                for arm in ("load", *ARMS)]
        peaks = {j["arm"]: p["peak_rss_mb"]
                 for j, p in zip(jobs, workers("benchmarks.llm", jobs), strict=True)}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    out = summarize(timed, loads, peaks)
    med = out["median"]
    print(f"SmolLM2 LoRA b{out['batch']} ({out['length']['mean']:.0f} tokens/example): ex/s "
          + ", ".join(f"{a} {med[a]['examples_per_s']:.2f}" for a in ARMS)
          + f"; fit/Trainer = {out['fit_over_trainer_examples_per_s']:.2f} (goal >= 1.0, rounds "
          f"{[round(x, 2) for x in out['per_round']['fit_over_trainer_examples_per_s']]}); "
          f"fit/bare time = {out['fit_over_bare_time']:.2f} (goal <= 1.15, rounds "
          f"{[round(x, 2) for x in out['per_round']['fit_over_bare_time']]}); CPU time fit/Trainer "
          f"{out['fit_over_trainer_cpu_time']:.2f}, fit/bare {out['fit_over_bare_cpu_time']:.2f}; "
          f"profiled fit/Trainer: aten calls {out['fit_over_trainer_ops']['aten_calls']:.3f}, "
          f"matmuls {out['fit_over_trainer_ops']['matmul_calls']:.3f}, self CPU "
          f"{out['fit_over_trainer_ops']['self_cpu_seconds']:.3f}; "
          f"tokens/s fit "
          f"{med['fit']['tokens_per_s']:.0f}; {med['fit']['fraction_of_matmul']:.1%} of the "
          f"matmul's {out['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s; peak RSS MiB "
          + ", ".join(f"{a} {peaks[a]:.0f}" for a in peaks)
          + f"; load {loads['from_gguf_seconds']:.1f} s from GGUF, "
          f"{loads['cached_seconds']:.1f} s cached (goal <= {CACHED_LOAD_GOAL_S:.0f})")
    save("llm", out)
    return out


if __name__ == "__main__":
    args = is_worker()
    if args is not None:
        job = args.pop("job")
        print(json.dumps({"timing": timing, "memory": memory, "load": load}[job](**args)))
    else:
        main()
