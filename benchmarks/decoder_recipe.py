"""How SmolLM2 is asked and tuned on real text: the decoder recipe, chosen on validation.

    python -m benchmarks.decoder_recipe                 # both parts (≈ 15 min on a quiet machine)
    python -m benchmarks.decoder_recipe --part prompts

The family's first recipe (a chat-template question, LoRA at lr 2e-3) was chosen on the
synthetic world. This script chooses again on real sentences, and never reads a test sentence:
every row comes from a domain's training pool (`data/sentences.py`), drawn with seed 0.

- `prompts`: on each domain (product, film, restaurant), the last 200 rows of the draw are the
  validation sentences; the 4 examples of a few-shot prompt come from its first 64 rows and the
  32 calibration texts (labels unread) from the next ones. Two templates (the chat template
  with the family's question; the plain completion "Review: …\\nSentiment:"), 0 and 4 examples,
  raw and calibrated: accuracy of each on the validation sentences.
- `lora`: film sentences, the pretrained SmolLM2 fine-tuned with LoRA (r = 8 on q, k, v, o) in
  the chosen template on the first 64 rows of the draw (the decoder table's budget; 256 labels
  take the same recipe); validation: the next rows of the
  pool, up to 200. Learning rate × epochs: accuracy and seconds of each.

The results file (benchmarks/results/decoder_recipe.json) keeps every cell, the command and
the date; the family's defaults (`families/causal.py`) cite it.
"""

from __future__ import annotations

import argparse
import sys
import time

from .common import save

DOMAINS = ("product", "film", "restaurant")
VALIDATION, EXAMPLE_ROWS, CALIBRATION = 200, 64, 32
TEMPLATES, SHOTS = ("chat", "completion"), (0, 4)
BUDGETS, LRS, EPOCHS = (64,), (5e-4, 2e-3), (2, 4)  # 64: the budget of the decoder table


def pool(domain: str):
    """Return the training pool of a domain, all 500 rows, in seed 0's order."""
    from transfer_lab.data.tasks import get_task

    return get_task(f"{domain}_sentences").load("train", 500, 0)


def prompts() -> dict:
    """Return the validation accuracy of each template × shots × calibration on each domain."""
    import torch
    from transformers import AutoModelForCausalLM

    from transfer_lab.families import prompting
    from transfer_lab.families.causal import CausalLM
    from transfer_lab.models import get_backbone, load_tokenizer

    tokenizer = load_tokenizer("smollm2")
    model = AutoModelForCausalLM.from_pretrained(str(get_backbone("smollm2").path()),
                                                 dtype=torch.float32)
    classes, out = ("negative", "positive"), {}
    for domain in DOMAINS:
        rows = pool(domain)
        val, gold = rows["text"][-VALIDATION:], torch.tensor(rows["label"][-VALIDATION:])
        examples = prompting.few_shot_examples(rows["text"][:EXAMPLE_ROWS],
                                               rows["label"][:EXAMPLE_ROWS], 4, 0, classes)
        reference = rows["text"][EXAMPLE_ROWS:EXAMPLE_ROWS + CALIBRATION]
        for template in TEMPLATES:
            family = CausalLM(template=template)
            answers = family.answers(tokenizer, classes)
            for shots in SHOTS:
                shown = examples if shots else []
                start = time.perf_counter()
                scores = prompting.score_labels(model, tokenizer, family.prompts(
                    tokenizer, val + reference, shown), answers, max_length=1024)
                test, ref = scores[:len(val)], scores[len(val):]
                cell = {"raw": float((test.argmax(-1) == gold).float().mean()),
                        "calibrated": float((prompting.calibrate(test, ref).argmax(-1) == gold)
                                            .float().mean()),
                        "positive_share_raw": float(test.argmax(-1).float().mean()),
                        "seconds": time.perf_counter() - start}
                out[f"{domain}/{template}/{shots}-shot"] = cell
                print(f"  {domain:10s} {template:10s} {shots}-shot: raw {cell['raw']:.3f}, "
                      f"calibrated {cell['calibrated']:.3f} ({cell['seconds']:.0f} s)",
                      flush=True)
    return out


def lora() -> dict:
    """Return the validation accuracy and seconds of each LoRA budget × lr × epochs on film."""
    import transfer_lab as tl
    from transfer_lab import pipeline
    from transfer_lab.data.tasks import get_task
    from transfer_lab.models import get_backbone, load_tokenizer

    task, family = get_task("film_sentences"), pipeline.family_of("film_sentences", "smollm2")
    theta = get_backbone("smollm2").path()
    tokenizer, rows, out = load_tokenizer("smollm2"), pool("film"), {}
    for labels in BUDGETS:
        train = rows.select(range(labels))
        val = rows.select(range(labels, min(len(rows), labels + VALIDATION)))
        for epochs in EPOCHS:
            for lr in LRS:
                config = family.target_config("smollm2").replace(lr=lr, epochs=epochs,
                                                                 progress=False)
                data = (family.encode(train, tokenizer, task, config.max_length), val)
                start = time.perf_counter()
                run, _ = tl.transfer(theta, task, labels, 0, "smollm2", config, data,
                                     arm="pretrained")
                cell = {"labels": labels, "lr": lr, "epochs": epochs, "validation": len(val),
                        "accuracy": run.metrics["accuracy"],
                        "seconds": time.perf_counter() - start}
                out[f"{labels}/lr {lr:g}/{epochs} epochs"] = cell
                print(f"  {labels} labels, lr {lr:g}, {epochs} epochs: "
                      f"{cell['accuracy']:.3f} ({cell['seconds']:.0f} s)", flush=True)
    return out


def main(parts: tuple[str, ...], command: str) -> dict:
    """Run the parts, saving decoder_recipe.json after each (a part run again replaces its
    cells, the others stay)."""
    import json

    import transfer_lab as tl

    from .common import RESULTS

    tl.quiet()
    path = RESULTS / "decoder_recipe.json"
    done = json.loads(path.read_text())["parts"] if path.exists() else {}
    for part in parts:  # each part saved as it ends, the others kept
        print(f"{part}:", flush=True)
        done[part] = {"prompts": prompts, "lora": lora}[part]()
        save("decoder_recipe", {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
                                "parts": done})
    return done


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoder_recipe",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append", choices=("prompts", "lora"))
    args = parser.parse_args()
    main(tuple(args.part or ("prompts", "lora")),
         " ".join(["python -m benchmarks.decoder_recipe", *sys.argv[1:]]))
