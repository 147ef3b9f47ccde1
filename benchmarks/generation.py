"""The decoder writes: SmolLM2 translating into the toy language and answering questions in words.

    python -m benchmarks.generation                         # every part (≈ 60 min, 2 cores)
    python -m benchmarks.generation --part recipe           # LoRA recipe, chosen on validation
    python -m benchmarks.generation --part translation      # the table of 5.3 and its decodings
    python -m benchmarks.generation --part qa               # QA by generation (5.4)

- `recipe`: for each task (toy_translation at 1,000 pairs, qa_orgs at 128 questions: the budgets
  of chapters 5.3 and 5.4), SmolLM2 with LoRA on seed 0's training rows, at each learning rate
  of the grid for up to 4 epochs, scored after each epoch on 100 validation rows drawn from the
  training stream of seed 100; the best (rate, epochs) is the recipe, as `pipeline.Selection`
  chooses. The test split is never read.
- `translation`: `tl.compare("toy_translation", model="smollm2")` with the chosen recipe, 3
  seeds, the 100 test sentences of 5.3: zero-shot, 4-shot and LoRA-tuned arms (BLEU, chrF,
  exact share), and the first test sentences' translations of seed 0. Then the decodings of
  the LoRA model of seed 0: greedy, beam search (4 beams) and sampling
  (T = 0.7, top-p = 0.9, seeds 0 to 2), each with its scores and seconds.
- `qa`: the same arms on qa_orgs (the 300 test questions and 128 questions per seed of 5.4).

Results go to benchmarks/results/generation.json, each part with its command, date and seconds;
chapters read them through `transfer_lab.lab.generation_results`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .common import RESULTS, is_worker, save, workers

SEEDS = 3
VALIDATION, VALIDATION_SEED = 100, 100  # rows of the training stream of a seed no run trains on
TASKS = {  # task: (training rows per seed, test rows, learning rates, most epochs)
    # 4 epochs of 1,000 pairs: 4,000 pairs seen, under the 4,800 of 5.3's encoder–decoders
    "toy_translation": (1000, 100, (2e-3, 5e-3), 4),
    "qa_orgs": (128, 300, (5e-4, 2e-3), 4),  # 5.4: 128 questions (its span reader: 10 epochs)
}
SAMPLING_SEEDS = (0, 1, 2)
SHOWN = 8  # test rows whose answers are kept, per arm (seed 0)
PARTS = ("recipe", "translation", "qa")


def _family(task: str):
    """Return the generation family of a task on SmolLM2."""
    from transfer_lab import pipeline

    return pipeline.family_of(task, "smollm2")


def recipe_run(task: str, lr: float) -> dict:
    """Return the validation scores after each epoch of one LoRA run (seed 0, rate `lr`)."""
    import transfer_lab as tl
    from transfer_lab.data.tasks import get_task
    from transfer_lab.models import get_backbone, load_tokenizer

    tl.quiet()
    labels, _, _, epochs = TASKS[task]
    family, spec = _family(task), get_task(task)
    tokenizer, theta = load_tokenizer("smollm2"), get_backbone("smollm2").path()
    train, val = spec.load("train", labels, 0), spec.load("train", VALIDATION, VALIDATION_SEED)
    config = family.target_config("smollm2").replace(lr=lr, epochs=epochs, eval_every=1,
                                                     progress=False)
    data = (family.encode(train, tokenizer, spec, config.max_length), val)
    start = time.perf_counter()
    run, _ = tl.transfer(theta, task, labels, 0, "smollm2", config, data)
    return {"lr": lr, "labels": labels, "validation": len(val),
            "seconds": time.perf_counter() - start,
            "epochs": [{k: v for k, v in e.items() if k not in ("hypotheses", "step")}
                       for e in run.history.evals]}


def recipe() -> dict:
    """Return, per task, each learning rate's validation scores epoch by epoch and the chosen
    (rate, epochs): the best on validation, as `pipeline.Selection` chooses. Each rate runs in
    its own process, all at once."""
    jobs = [{"task": task, "lr": lr} for task, spec in TASKS.items() for lr in spec[2]]
    out: dict = {}
    for job, cell in zip(jobs, workers("benchmarks.generation", jobs), strict=True):
        out.setdefault(job["task"], {"runs": []})["runs"].append(cell)
    for task, value in out.items():
        metric = _family(task).metric
        best = max(((run["lr"], e["epoch"], e[metric]) for run in value["runs"]
                    for e in run["epochs"]), key=lambda c: c[2])
        value |= {"metric": metric, "chosen": {"lr": best[0], "epochs": best[1]}}
        print(f"  {task}: " + "; ".join(
            f"lr {run['lr']:g}: " + ", ".join(f"{e[metric]:.1f}" for e in run["epochs"])
            for run in value["runs"]) + f" → lr {best[0]:g}, {best[1]} epochs", flush=True)
    return out


def arms(task: str, chosen: dict, seeds: int, keep_models: bool = False):
    """Return the comparison of zero-shot, 4-shot and LoRA (the chosen recipe) on a task."""
    import transfer_lab as tl

    labels, test, _, _ = TASKS[task]
    config = _family(task).target_config("smollm2").replace(lr=chosen["lr"],
                                                            epochs=chosen["epochs"])
    return tl.compare(task, model="smollm2", labels=labels, seeds=seeds, config=config,
                      test_examples=test, keep_models=keep_models, progress=False)


def table(c) -> dict:
    """Return a comparison as `Comparison.to_dict()` keeps it, each run cut to its numbers and
    the answers to the first `SHOWN` test rows (`Comparison.from_dict` reads it back)."""
    def cut(row: dict) -> dict:
        kept = {k: v for k, v in row.items() if isinstance(v, (int, float, str))}
        return kept | {"hypotheses": row.get("hypotheses", [])[:SHOWN]}

    data = c.to_dict()
    return data | {"arms": {arm: [cut(r) for r in rows] for arm, rows in data["arms"].items()},
                   "theta_S": "smollm2"}


def decodings(c, task: str) -> dict:
    """Return the scores and seconds of greedy, beam and sampling decoding of seed 0's LoRA
    model on the comparison's test rows."""
    from dataclasses import replace

    from transfer_lab.data.tasks import get_task
    from transfer_lab.families.generation import DECODINGS, generate
    from transfer_lab.models import load_tokenizer

    family, spec = _family(task), get_task(task)
    tokenizer = load_tokenizer("smollm2")
    test = spec.load("test", TASKS[task][1])
    references = family.references(test)
    longest = max(len(tokenizer(f" {r}")["input_ids"]) for refs in references for r in refs)
    settings = [("greedy", DECODINGS["greedy"]), ("beam 4", DECODINGS["beam"])] + [
        (f"sampling, seed {s}", replace(DECODINGS["sample"], seed=s)) for s in SAMPLING_SEEDS]
    model, prompts = c.models["pretrained"][0], family.prompts(spec, family.inputs(test))
    out = {}
    for setting, decoding in settings:
        decoding = replace(decoding, max_new_tokens=int(1.5 * longest) + 2)
        start = time.perf_counter()
        hypotheses = generate(model, tokenizer, prompts, decoding, max_length=128)
        cell = {**family.score(hypotheses, references), "decoding": decoding.name,
                "seconds": time.perf_counter() - start, "shown": hypotheses[:SHOWN]}
        out[f"LoRA/{setting}"] = cell  # the LoRA-tuned pretrained LLM
        print(f"  LoRA, {setting}: BLEU {cell['bleu']:.1f}, chrF {cell['chrf']:.1f} "
              f"({cell['seconds']:.0f} s)", flush=True)
    return out


def main(parts: tuple[str, ...], seeds: int, command: str) -> dict:
    """Run the parts, saving generation.json after each (other parts kept)."""
    import transfer_lab as tl

    tl.quiet()
    path = RESULTS / "generation.json"

    def stored() -> dict:  # read again before each write: parts may run in parallel processes
        return json.loads(path.read_text())["parts"] if path.exists() else {}

    def keep(part: str, value: dict, start: float) -> None:
        used = 1 if part == "recipe" else seeds  # the recipe runs seed 0 only
        save("generation", {"parts": stored() | {part: {
            "command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "seeds": used,
            "seconds": time.perf_counter() - start, "results": value}}}, quiet=True)

    for part in parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        if part == "recipe":
            keep(part, recipe(), start)
        else:
            task = {"translation": "toy_translation", "qa": "qa_orgs"}[part]
            chosen = stored()["recipe"]["results"][task]["chosen"]
            c = arms(task, chosen, seeds, keep_models=part == "translation")
            print(f"  {task}: {c.table()}", flush=True)
            value = {"recipe": chosen, **table(c)}
            keep(part, value, start)
            if part == "translation":
                value["decodings"] = decodings(c, task)
                keep(part, value, start)
        print(f"  {part}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"wrote {path}")
    return stored()


if __name__ == "__main__":
    if job := is_worker():
        print(json.dumps(recipe_run(**job)))
        sys.exit()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append", choices=PARTS)
    parser.add_argument("--seeds", type=int, default=SEEDS)
    args = parser.parse_args()
    main(tuple(args.part or PARTS), args.seeds,
         " ".join(["python -m benchmarks.generation", *sys.argv[1:]]))
