"""Checkpoints: SIGKILL mid-epoch then resume gives the same weights bit for bit; atomic writes;
broken checkpoints are named and skipped; compare() and the CLI resume."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _helpers import without_seconds
from safetensors.torch import load_file

import transfer_lab as tl
from transfer_lab.cli import main
from transfer_lab.data import world
from transfer_lab.families.classification import classification_collator, encode_classification
from transfer_lab.models.mlm import encode_mlm, mlm_collator
from transfer_lab.training import checkpoint

TARGET = str(Path(__file__).with_name("_kill_target.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def start(mode: str, run_dir: Path, out: Path) -> subprocess.Popen:
    """Start the tiny training run of _kill_target.py in a new process."""
    return subprocess.Popen([sys.executable, TARGET, mode, str(run_dir), str(out)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    """Wait for a run and fail with its stderr if it failed."""
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def same_weights(a: Path, b: Path) -> bool:
    """Return True when two safetensors files hold bit-identical tensors."""
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.slow
def test_sigkill_mid_epoch_or_mid_write_then_resume_is_bit_identical(tmp_path):
    reference = start("plain", tmp_path / "unused", tmp_path / "reference.safetensors")
    writer = start("die-in-write", tmp_path / "written", tmp_path / "never.safetensors")
    victim = start("train", tmp_path / "run", tmp_path / "never.safetensors")
    for line in victim.stdout:  # epoch 2 of 3 is steps 11-20; checkpoints every 3 steps
        if line.strip() == "step 14":
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(timeout=60)
    writer.communicate(timeout=600)
    finish(reference)
    assert victim.returncode == writer.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.safetensors").exists()
    # killed while writing step 6: that folder never appears, the one of step 3 is intact
    assert [p.name for p in checkpoint.checkpoints(tmp_path / "written")] == ["step-00000003"]
    assert any(p.name.startswith(".tmp-") for p in (tmp_path / "written").iterdir())
    found = checkpoint.restore(tmp_path / "written", tl.build_model("tiny", seed=1))
    assert (found.step, found.epoch, found.batch) == (3, 0, 3)
    # killed mid-epoch: resume skips the batches done and ends with the same weights
    latest = checkpoint.latest_good(tmp_path / "run")
    assert latest.epoch == 1 and latest.batch > 0, latest
    finish(start("resume", tmp_path / "run", tmp_path / "resumed.safetensors"))
    assert same_weights(tmp_path / "reference.safetensors", tmp_path / "resumed.safetensors")
    losses = json.loads((tmp_path / "resumed.safetensors.json").read_text())
    assert losses == json.loads((tmp_path / "reference.safetensors.json").read_text())
    assert [p.name for p in checkpoint.checkpoints(tmp_path / "run")] == ["step-00000030"]


# --- in one process: broken files, settings, masked-LM resume, compare and the CLI --------

@pytest.fixture(scope="module")
def data():
    tokenizer = tl.load_tokenizer("tiny")
    encoded = encode_classification(tl.get_task("film_sentiment").load("train", 32, 0), tokenizer)
    return encoded, classification_collator(tokenizer)


CONFIG = tl.TrainConfig(lr=3e-4, epochs=2, batch_size=8, progress=False)  # 4 steps an epoch


class Stop(tl.Callback):
    """Raise KeyboardInterrupt after a given step (a user pressing stop)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def trained(run_dir, data, **kwargs) -> tl.History:
    """Run fit on the 32 film reviews into `run_dir` (checkpoints every 3 steps)."""
    encoded, collate = data
    return tl.fit(tl.build_model("tiny", seed=0), encoded, config=kwargs.pop("config", CONFIG),
                  collate_fn=collate, checkpoint_dir=run_dir, checkpoint_every=3, **kwargs)


def test_a_truncated_checkpoint_is_named_and_resume_falls_back(tmp_path, data):
    with pytest.raises(KeyboardInterrupt):
        trained(tmp_path, data, callbacks=[Stop(7)])
    newest, previous = checkpoint.checkpoints(tmp_path)[::-1]
    weights = newest / checkpoint.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError, match="model.safetensors is truncated"):
        checkpoint.load_checkpoint(newest)
    with pytest.warns(UserWarning, match=f"{weights}.*resuming from the one before"):
        found = checkpoint.latest_good(tmp_path)
    assert found.path == previous
    (previous / checkpoint.MANIFEST).write_text('{"step": 4, "fil')
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint.json is truncated"):
        checkpoint.load_checkpoint(previous)
    with pytest.warns(UserWarning, match="skipping a broken checkpoint"):
        assert checkpoint.latest_good(tmp_path) is None


def test_resume_refuses_other_settings_and_needs_a_folder(tmp_path, data):
    with pytest.raises(KeyboardInterrupt):
        trained(tmp_path, data, callbacks=[Stop(5)])
    with pytest.raises(ValueError, match="written with lr=0.0003, this run has lr=0.001"):
        trained(tmp_path, data, config=CONFIG.replace(lr=1e-3), resume=True)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint folder"):
        tl.fit(tl.build_model("tiny"), data[0], config=CONFIG, collate_fn=data[1], resume=True)


def test_resume_without_checkpoints_starts_and_a_finished_run_returns_its_history(tmp_path,
                                                                                 data):
    first = trained(tmp_path, data, resume=True)  # nothing there yet: starts from step 0
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step-00000008"]
    again = trained(tmp_path, data, resume=True)  # finished: nothing left to train
    assert again.steps == first.steps and again.evals == first.evals


def test_masked_lm_resume_restores_the_masking_generator(tmp_path):
    tokenizer = tl.load_tokenizer("tiny")
    corpus = encode_mlm(world.mlm_corpus(48, 0), tokenizer, 32)
    config = tl.TrainConfig(lr=1e-3, epochs=2, batch_size=8, progress=False)

    def run(**kwargs):
        model = tl.build_model("tiny", "mlm", seed=0)
        history = tl.fit(model, corpus, config=config, collate_fn=mlm_collator(tokenizer, seed=0),
                         checkpoint_dir=tmp_path, checkpoint_every=4, **kwargs)
        return model, history

    reference, history = run()
    for p in checkpoint.checkpoints(tmp_path):
        checkpoint._discard(p)
    with pytest.raises(KeyboardInterrupt):
        run(callbacks=[Stop(9)])  # checkpoint at step 8: epoch 1, batch 2
    resumed, again = run(resume=True)
    assert again.steps == history.steps
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in reference.state_dict().items())


def test_pretrain_source_continues_where_it_stopped(tmp_path, monkeypatch):
    config = tl.TrainConfig(lr=1e-3, batch_size=16, max_steps=8, eval_every=0, progress=False)
    args = dict(source="product_sentiment", examples=64, config=config)  # 4 steps an epoch
    whole = tl.pretrain_source(**args, out_dir=tmp_path / "a")
    real = tl.pipeline.fit
    monkeypatch.setattr(tl.pipeline, "fit", lambda *a, **k: real(*a, **k, callbacks=[Stop(6)]))
    with pytest.raises(KeyboardInterrupt):  # the session dies after step 6
        tl.pretrain_source(**args, out_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert checkpoint.latest_good(tmp_path / ".b.checkpoints").step == 4
    monkeypatch.setattr(tl.pipeline, "fit", real)
    resumed = tl.pretrain_source(**args, out_dir=tmp_path / "b")  # called again: continues
    assert same_weights(whole / "model.safetensors", resumed / "model.safetensors")
    assert json.loads((resumed / "theta_S.json").read_text())["steps"] == 8
    assert not (tmp_path / ".b.checkpoints").exists()


def test_checkpoint_files_are_safetensors_and_weights_only(tmp_path, data):
    trained(tmp_path, data)
    folder = checkpoint.checkpoints(tmp_path)[-1]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "model.safetensors",
                                                       "trainer.pt"]
    torch.load(folder / checkpoint.TRAINER, weights_only=True)  # plain data and tensors only


def test_compare_resumes_from_its_records_and_equals_an_uninterrupted_run(tmp_path,
                                                                          theta_S_small,
                                                                          monkeypatch):
    config = tl.TrainConfig(epochs=2, eval_every=1, progress=False)
    args = dict(theta_S=theta_S_small, labels=16, seeds=1, config=config, progress=False)
    whole = tl.compare(**args, checkpoint_dir=tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "bow-seed0.json", "comparison.json", "scratch-seed0.json", "transfer-seed0.json"]
    (tmp_path / "a" / "transfer-seed0.json").unlink()  # as if it died during the transfer arm
    calls = []
    real = tl.pipeline.transfer
    monkeypatch.setattr(tl.pipeline, "transfer", lambda *a, **k: calls.append(a) or real(*a, **k))
    resumed = tl.compare(**args, checkpoint_dir=tmp_path / "a", resume=True)
    assert len(calls) == 1  # the scratch arm came from its record
    assert without_seconds(resumed.arms) == without_seconds(whole.arms)
    with pytest.raises(ValueError, match="with labels=16, not 32"):
        tl.compare(**{**args, "labels": 32}, checkpoint_dir=tmp_path / "a", resume=True)
    with pytest.raises(FileExistsError, match="pass resume=True to continue it"):
        tl.compare(**args, checkpoint_dir=tmp_path / "a")


@pytest.mark.parametrize("args, needle", [
    (["run", "--resume"], "--resume needs --out DIR"),
    (["run", "--resume", "--out", "{finished}"], "holds a finished run (results.json)"),
    (["run", "--resume", "--out", "{other}"], "is not the folder of a transfer-lab run"),
])
def test_cli_resume_errors_are_one_line(args, needle, tmp_path, capsys):
    (tmp_path / "finished").mkdir()
    (tmp_path / "finished" / "results.json").write_text("{}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    args = [a.format(finished=tmp_path / "finished", other=tmp_path / "other") for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
