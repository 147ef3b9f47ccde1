"""Threads or processes? One process with every core's threads against one process per core.

    python -m benchmarks.threads

The same tiny-BERT training (steps, batch) runs as (a) one process using all cores' threads and
(b) one single-thread process per core at the same time; reported is the total examples/s of
each and their ratio. It justifies `make test` running pytest workers with one thread each.
The workers start once and train on command, so the repeats measure training, not start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .common import is_worker, median, save


def serve(threads: int, steps: int, batch: int) -> None:
    """Set up once, then train the tiny model `steps` steps for every "go" line on stdin.

    Prints "ready" after the imports and a short warm-up, then one JSON line of seconds per
    training; the workers stay alive between repeats, so no repeat pays for starting Python.
    """
    import torch

    torch.set_num_threads(threads)
    import transfer_lab as tl
    from transfer_lab.families.classification import classification_collator, encode_classification

    tl.quiet()
    tok = tl.load_tokenizer("tiny")
    data = encode_classification(tl.get_task("product_sentiment").load("train", steps * batch, 0),
                                 tok, 64)

    def train(n: int) -> float:
        net = tl.build_model("tiny", num_classes=2)
        config = tl.TrainConfig(max_steps=n, batch_size=batch, progress=False, eval_every=0)
        start = time.perf_counter()
        tl.fit(net, data, config=config, collate_fn=classification_collator(tok))
        return time.perf_counter() - start

    train(3)  # warm-up: first-call costs hit no timed run
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps({"seconds": train(steps)}), flush=True)


def _launch(threads: int, steps: int, batch: int) -> subprocess.Popen:
    """Start one training worker in a fresh process."""
    args = json.dumps({"threads": threads, "steps": steps, "batch": batch})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.threads", "--worker", args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _line(proc: subprocess.Popen) -> str:
    """Return a worker's next line of output; fail clearly if it died."""
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"threads worker exited with {proc.wait()}")
    return line.strip()


def _seconds(procs: list[subprocess.Popen]) -> list[float]:
    """Start one training in each worker at once; return the seconds each took."""
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return [json.loads(_line(p))["seconds"] for p in procs]


def main(repeats: int = 5, steps: int = 60, batch: int = 32) -> dict:
    """Measure both layouts, interleaved; print and save examples/s and the ratio."""
    cores = os.cpu_count() or 1
    single = _launch(cores, steps, batch)
    per_core = [_launch(1, steps, batch) for _ in range(cores)]
    for p in [single, *per_core]:
        assert _line(p) == "ready"
    one, many = [], []
    for _ in range(repeats):
        one.append(steps * batch / _seconds([single])[0])
        many.append(cores * steps * batch / max(_seconds(per_core)))
    for p in [single, *per_core]:
        p.stdin.close()
        p.wait()
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
        serve(**args)
    else:
        main()
