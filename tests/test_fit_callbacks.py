"""fit's hooks: their order, a callback that ends training, and a schedule run to its end."""

import pytest

import transfer_lab as tl
from transfer_lab.families import classification_metric
from transfer_lab.families.classification import classification_collator, encode_classification

LR = 1e-3


@pytest.fixture(scope="module")
def data():
    """Return 32 encoded film reviews (4 batches of 8) and their collator."""
    tokenizer = tl.load_tokenizer("tiny")
    encoded = encode_classification(tl.get_task("film_sentiment").load("train", 32, 0), tokenizer)
    return encoded, classification_collator(tokenizer)


class Record(tl.Callback):
    """Record every hook as it runs; set `state.stop` after step `stop_at`."""

    def __init__(self, stop_at: int | None = None):
        self.events, self.stop_at = [], stop_at

    def on_fit_start(self, state):
        self.events.append(("fit_start", state.step))

    def on_epoch_start(self, state):
        self.events.append(("epoch_start", state.epoch))

    def on_step_end(self, state):
        self.events.append(("step", state.step))
        if state.step == self.stop_at:
            state.stop = True

    def on_evaluate(self, state):
        self.events.append(("evaluate", state.step, sorted(state.metrics)))

    def on_epoch_end(self, state):
        self.events.append(("epoch_end", state.epoch))

    def on_fit_end(self, state):
        self.events.append(("fit_end", state.step))


def run(data, callbacks=(), model=None, **config) -> tl.History:
    """Fit `model` (default: a seeded tiny classifier) on the 32 reviews, evaluated on them."""
    encoded, collate = data
    settings = dict(lr=LR, batch_size=8, eval_every=1, warmup_ratio=0.0, progress=False)
    return tl.fit(model or tl.build_model("tiny", seed=0), encoded, encoded,
                  config=tl.TrainConfig(**{**settings, **config}), collate_fn=collate,
                  metric_fn=classification_metric, callbacks=callbacks)


METRICS = ["accuracy", "loss", "macro_f1"]


def test_hooks_run_in_order_each_epoch(data):
    record = Record()
    history = run(data, [record], epochs=2)
    epoch = [("step", 1), ("step", 2), ("step", 3), ("step", 4)]
    assert record.events == [
        ("fit_start", 0), ("epoch_start", 0), *epoch, ("evaluate", 4, METRICS), ("epoch_end", 0),
        ("epoch_start", 1), *[("step", s + 4) for _, s in epoch], ("evaluate", 8, METRICS),
        ("epoch_end", 1), ("fit_end", 8)]
    assert [e["step"] for e in history.evals] == [4, 8]


def test_a_callback_that_sets_stop_ends_fit_after_that_step_with_a_final_evaluation(data):
    record, model = Record(stop_at=3), tl.build_model("tiny", seed=0)
    history = run(data, [record], model, epochs=5, eval_every=0)  # 20 steps planned, no evals
    assert [s["step"] for s in history.steps] == [1, 2, 3]
    assert len(history.evals) == 1 and history.evals[0]["step"] == 3
    # the final evaluation is of the model as it stopped: evaluating it again gives the same
    encoded, collate = data
    again = tl.evaluate(model, encoded, collate_fn=collate, metric_fn=classification_metric)
    assert history.evals[0]["epoch"] == 1
    assert {k: history.evals[0][k] for k in again} == pytest.approx(again, abs=1e-6)
    assert record.events[-4:] == [("step", 3), ("evaluate", 3, METRICS), ("epoch_end", 0),
                                  ("fit_end", 3)]


def test_stop_in_a_later_epoch_keeps_the_epoch_evaluations_before_it(data):
    history = run(data, [Record(stop_at=6)], epochs=5)
    assert len(history.steps) == 6
    assert [(e["step"], e["epoch"]) for e in history.evals] == [(4, 1), (6, 2)]


@pytest.mark.parametrize("planned", [dict(max_steps=6), dict(max_steps=3), dict(epochs=3)])
def test_a_linear_schedule_runs_to_zero_at_the_last_step(data, planned):
    history = run(data, epochs=planned.get("epochs", 30), max_steps=planned.get("max_steps"),
                  eval_every=0)
    total = planned.get("max_steps") or planned["epochs"] * 4
    lrs = [s["lr"] for s in history.steps]
    assert len(lrs) == total  # one scheduler step per optimizer step, none lost or doubled
    assert lrs == pytest.approx([LR * (total - k) / total for k in range(1, total + 1)])
    assert lrs[-1] == 0.0


@pytest.mark.parametrize(("epochs", "min_steps", "steps"), [(1, 10, 10), (3, 10, 12), (1, 0, 4)])
def test_min_steps_adds_epochs_at_a_small_budget_only(data, epochs, min_steps, steps):
    history = run(data, epochs=epochs, min_steps=min_steps, eval_every=0)
    assert len(history.steps) == steps  # 4 batches an epoch
    assert history.steps[-1]["lr"] == 0.0  # the schedule spans the longer run
    assert history.evals[-1]["epoch"] == -(-steps // 4)


def test_warmup_reaches_the_peak_then_decays_to_zero(data):
    history = run(data, max_steps=8, warmup_ratio=0.25, eval_every=0)  # 2 warm-up steps
    lrs = [s["lr"] for s in history.steps]
    assert lrs[:2] == pytest.approx([LR / 2, LR]) and max(lrs) == pytest.approx(LR)
    assert lrs[-1] == 0.0 and all(a > b for a, b in zip(lrs[1:], lrs[2:], strict=False))


def test_progress_bar_and_tensorboard_are_callbacks_of_the_config(data, tmp_path, capsys):
    history = run(data, max_steps=2, eval_every=0, progress=True, log_dir=str(tmp_path / "tb"))
    assert len(history.steps) == 2
    assert "fit" in capsys.readouterr().err  # the tqdm bar over the optimizer steps
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
