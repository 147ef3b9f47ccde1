"""A tiny training run for the crash tests: `python tests/_kill_target.py MODE RUN_DIR OUT`.

MODE is `plain` (no checkpoints), `train` (checkpoints every 3 steps, slow after step 12 so a
test can kill it mid-epoch), `resume` (continue from RUN_DIR's checkpoints) or `die-in-write`
(SIGKILL itself while writing the checkpoint of step 6). Prints `step N` after each step; at
the end writes the final weights to OUT (safetensors) and the per-step losses to OUT.json.
"""

import json
import os
import signal
import sys
import time

import torch

torch.set_num_threads(1)

from safetensors.torch import save_model  # noqa: E402

import transfer_lab as tl  # noqa: E402
from transfer_lab.families.classification import (  # noqa: E402
    classification_collator,
    encode_classification,
)
from transfer_lab.training import checkpoint  # noqa: E402

EXAMPLES, BATCH, EPOCHS, EVERY = 80, 8, 3, 3  # 10 batches an epoch, 30 steps


class Report(tl.Callback):
    """Print each step; in `train` mode, slow down after step 12 (the test kills it then)."""

    def __init__(self, slow: bool):
        self.slow = slow

    def on_step_end(self, state: tl.FitState) -> None:
        print(f"step {state.step}", flush=True)
        if self.slow and state.step >= 12:
            time.sleep(0.3)


def main(mode: str, run_dir: str, out: str) -> None:
    """Train the tiny model as MODE says and write its final weights to `out`."""
    tl.quiet()
    tokenizer = tl.load_tokenizer("tiny")
    data = encode_classification(tl.get_task("film_sentiment").load("train", EXAMPLES, 0),
                                 tokenizer)
    config = tl.TrainConfig(lr=3e-4, epochs=EPOCHS, batch_size=BATCH, progress=False)
    if mode == "die-in-write":
        saves = []
        real = checkpoint._fsync

        def fsync_then_die(path):
            real(path)
            if len(saves) == 1 and path.name == checkpoint.TRAINER:  # inside the 2nd write
                os.kill(os.getpid(), signal.SIGKILL)
            if path.name == checkpoint.MANIFEST:
                saves.append(path)

        checkpoint._fsync = fsync_then_die
    model = tl.build_model("tiny", seed=0)
    history = tl.fit(model, data, config=config, collate_fn=classification_collator(tokenizer),
                     callbacks=[Report(slow=mode == "train")],
                     checkpoint_dir=None if mode == "plain" else run_dir,
                     checkpoint_every=EVERY, resume=mode == "resume")
    save_model(model, out)
    with open(out + ".json", "w") as f:
        json.dump([s["loss"] for s in history.steps], f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
