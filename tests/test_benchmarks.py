"""Smoke test of the throughput benchmark on tiny sizes: each arm runs and trains alike."""

import torch

import transfer_lab as tl
from benchmarks import throughput


def test_fit_trainer_and_bare_loop_train_on_the_same_batches(monkeypatch):
    build = tl.build_model

    def without_dropout(*args, **kwargs):  # the arms draw dropout masks differently
        net = build(*args, **kwargs)
        for module in net.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        return net

    monkeypatch.setattr(tl, "build_model", without_dropout)
    tok, data = throughput._data("tiny", 3 * 8)
    runs = {arm: throughput.train_arm(arm, "tiny", 3, 8, tok, data) for arm in throughput.ARMS}
    first = {arm: r["first_loss"] for arm, r in runs.items()}
    # the same weights on the same first batch: the same loss, to float32 rounding
    assert max(first.values()) - min(first.values()) < 1e-5, first
    for r in runs.values():
        assert r["seconds"] > 0 and abs(r["examples_per_s"] * r["seconds"] - 3 * 8) < 1e-6
