"""Threads or processes? One process with every core's threads against one process per core.

    python -m benchmarks.threads

The same tiny-BERT training (steps, batch) runs as (a) one process using all cores' threads and
(b) one single-thread process per core at the same time; reported is the total examples/s of
each and their ratio. It justifies `make test` running pytest workers with one thread each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .common import is_worker, median, save


def train(threads: int, steps: int, batch: int) -> dict:
    """Train the tiny model `steps` steps with `threads` threads; return its seconds."""
    import torch

    torch.set_num_threads(threads)
    import transfer_lab as tl
    from transfer_lab.encode import classification_collator, encode_classification

    tl.quiet()
    tok = tl.load_tokenizer("tiny")
    data = encode_classification(tl.get_task("product_sentiment").load("train", steps * batch, 0),
                                 tok, 64)
    net = tl.build_model("tiny", num_labels=2)
    config = tl.TrainConfig(max_steps=steps, batch_size=batch, progress=False, eval_every=0)
    start = time.perf_counter()
    tl.fit(net, data, config=config, collate_fn=classification_collator(tok))
    return {"seconds": time.perf_counter() - start}


def _launch(threads: int, steps: int, batch: int) -> subprocess.Popen:
    """Start one training worker in a fresh process."""
    args = json.dumps({"threads": threads, "steps": steps, "batch": batch})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.threads", "--worker", args],
                            stdout=subprocess.PIPE, text=True, env=env)


def _seconds(procs: list[subprocess.Popen]) -> list[float]:
    """Wait for workers and return the training seconds each printed."""
    return [json.loads(p.communicate()[0].strip().splitlines()[-1])["seconds"] for p in procs]


def main(repeats: int = 3, steps: int = 60, batch: int = 32) -> dict:
    """Measure both layouts, interleaved; print and save examples/s and the ratio."""
    cores = os.cpu_count() or 1
    one, many = [], []
    for _ in range(repeats):
        one.append(steps * batch / _seconds([_launch(cores, steps, batch)])[0])
        seconds = _seconds([_launch(1, steps, batch) for _ in range(cores)])
        many.append(cores * steps * batch / max(seconds))
    result = {"cores": cores, "steps": steps, "batch": batch, "repeats": repeats,
              "one_process_examples_per_s": median(one),
              "process_per_core_examples_per_s": median(many),
              "ratio": median(many) / median(one)}
    print(f"{cores} cores: one process x {cores} threads {result['one_process_examples_per_s']:.0f}"
          f" ex/s; {cores} processes x 1 thread {result['process_per_core_examples_per_s']:.0f} "
          f"ex/s; ratio {result['ratio']:.2f}")
    save("threads", result)
    return result


if __name__ == "__main__":
    args = is_worker()
    if args is not None:
        print(json.dumps(train(**args)))
    else:
        main()
