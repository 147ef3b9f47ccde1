"""fit() and evaluate(): the training loop, on Accelerate (chapter 4; scale-out in chapter 6).

Nothing here knows a task by name: the model computes its loss, the caller passes the collator
and the evaluation (a task family's). Progress, TensorBoard and checkpoints are callbacks.
The same loop runs on a CPU, a GPU, or several processes (`torchrun`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator, skip_first_batches
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import default_data_collator, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from transfer_lab import validate
from transfer_lab.config import TrainConfig
from transfer_lab.training.checkpoint import Saver

MetricFn = Callable[[torch.Tensor, torch.Tensor], dict]
EvaluateFn = Callable[[torch.nn.Module], dict]


@dataclass
class History:
    """What `fit` returns: training loss per step and evaluation metrics per epoch."""

    steps: list[dict] = field(default_factory=list)  # {"step", "epoch", "loss", "lr"}
    evals: list[dict] = field(default_factory=list)  # {"step", "epoch", metric: value, ...}
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return the history as plain lists and floats (for JSON)."""
        return asdict(self)


@dataclass
class FitState:
    """What callbacks see: the model, the optimizer, where the loop is, the last numbers.

    A callback sets `stop = True` to end training after the current step (the run is then
    evaluated, as at its planned end).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    batch: int = 0  # batches done in this epoch
    batches: int = 0  # batches in an epoch
    total: int = 0  # optimizer steps planned
    loss: float = math.nan
    metrics: dict = field(default_factory=dict)
    history: History = field(default_factory=History)
    stop: bool = False


class Callback:
    """Hooks into `fit`; override the ones you need (progress, plots, unfreezing, stopping...)."""

    def on_fit_start(self, state: FitState) -> None:
        """Run once before the first step (after a resume restored the state)."""

    def on_epoch_start(self, state: FitState) -> None:
        """Run before each epoch."""

    def on_step_end(self, state: FitState) -> None:
        """Run after each optimizer step."""

    def on_evaluate(self, state: FitState) -> None:
        """Run after each evaluation; `state.metrics` holds its numbers."""

    def on_epoch_end(self, state: FitState) -> None:
        """Run after each epoch (and its evaluation, if any)."""

    def on_fit_end(self, state: FitState) -> None:
        """Run once after the last step."""


class Progress(Callback):
    """A tqdm bar over the run's optimizer steps, showing the loss."""

    def on_fit_start(self, state: FitState) -> None:
        """Open the bar (a resumed run starts it where it stopped)."""
        self.bar = tqdm(total=state.total, initial=state.step, desc="fit")

    def on_step_end(self, state: FitState) -> None:
        """Advance the bar by one step."""
        self.bar.update()
        self.bar.set_postfix(loss=f"{state.loss:.3f}", refresh=False)

    def on_fit_end(self, state: FitState) -> None:
        """Close the bar."""
        self.bar.close()


class TensorBoard(Callback):
    """Write the training loss, learning rate and evaluation metrics as TensorBoard events."""

    def __init__(self, log_dir: str | Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def on_step_end(self, state: FitState) -> None:
        """Log the step's loss and learning rate."""
        self.writer.add_scalar("train/loss", state.loss, state.step)
        self.writer.add_scalar("train/lr", state.history.steps[-1]["lr"], state.step)

    def on_evaluate(self, state: FitState) -> None:
        """Log each number of the evaluation."""
        for k, v in state.metrics.items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"eval/{k}", v, state.step)

    def on_fit_end(self, state: FitState) -> None:
        """Flush and close the event file."""
        self.writer.close()


class Checkpoints(Callback):
    """Write a checkpoint every `every` steps and after each epoch; keep the last when done."""

    def __init__(self, saver: Saver):
        self.saver = saver

    def on_step_end(self, state: FitState) -> None:
        """Save if `every` steps have passed (not on the last step: the epoch's end saves)."""
        if state.step < state.total and not state.stop:
            self.saver.step_done(state.step, state.epoch, state.batch, state.batches,
                                 state.history)

    def on_epoch_start(self, state: FitState) -> None:
        """Remember the data order as the epoch begins."""
        self.saver.epoch_started()

    def on_epoch_end(self, state: FitState) -> None:
        """Save the state at the epoch's end."""
        self.saver.save(state.step, state.epoch + 1, 0, state.history)

    def on_fit_end(self, state: FitState) -> None:
        """Keep only the final checkpoint."""
        self.saver.finish()


def param_groups(model: torch.nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Return AdamW groups: trainable weights decay, biases and LayerNorm weights do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr}]


def fused(device: torch.device) -> bool | None:
    """Return True where torch's AdamW has a fused kernel for `device` (the Trainer's default).

    The fused step is several times faster than torch's per-tensor loop on a CPU
    (benchmarks/throughput.py): about 10 ms instead of 75 ms a step for MiniLM's 22.7M weights.
    Elsewhere (None) torch chooses.
    """
    return device.type in ("cpu", "cuda") or None


def loader(data, batch_size: int, collate_fn=None, shuffle: bool = False, seed: int = 0,
           group_by_length: bool = False, by_length: bool = False) -> DataLoader:
    """Return a DataLoader over a tokenized dataset (seeded shuffling, dynamic padding).

    `group_by_length` shuffles into batches of texts of similar length (Transformers'
    LengthGroupedSampler), so dynamic padding adds fewer pad tokens. `by_length` (evaluation,
    where order does not change a metric) serves the examples longest first, unshuffled.
    """
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if shuffle and group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=_lengths(data), generator=generator)
    elif by_length and not shuffle:
        lengths = _lengths(data)
        sampler = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, generator=generator,
                      collate_fn=collate_fn or default_data_collator)


def _lengths(data) -> list[int]:
    """Return the number of tokens of each example of a tokenized dataset."""
    return [len(ids) for ids in data["input_ids"]]


def fit(
    model: torch.nn.Module,
    train_data,
    eval_data=None,
    *,
    config: TrainConfig | None = None,
    collate_fn: Callable | None = None,
    metric_fn: MetricFn | None = None,
    evaluate_fn: EvaluateFn | None = None,
    groups: list[dict] | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> History:
    """Train `model` on `train_data` and return its History (loss per step, metrics per epoch).

    The run is evaluated every `config.eval_every` epochs and at its end by `evaluate_fn(model)`
    (a task family's evaluation), or by `evaluate` on `eval_data` with `metric_fn`. `groups`
    are the optimizer's parameter groups (default: every trainable weight at `config.lr`).
    With `checkpoint_dir`, a checkpoint is written every `checkpoint_every` steps and after each
    epoch; `resume=True` continues from the newest good one, bit for bit (chapter 6). A loss
    that becomes NaN or infinite stops training with `TrainingDiverged`.
    """
    config = config or TrainConfig()
    validate.train_config(config)
    validate.not_empty(train_data, "train_data")
    set_seed(config.seed)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    saver = Saver(checkpoint_dir, checkpoint_every, settings=_settings(config, train_data),
                  main=accelerator.is_main_process)
    train_loader = loader(train_data, config.batch_size, saver.collator(collate_fn), shuffle=True,
                          seed=config.seed, group_by_length=config.group_by_length)
    order = train_loader.generator
    optimizer = torch.optim.AdamW(groups or param_groups(model, config.lr, config.weight_decay),
                                  fused=fused(accelerator.device))
    model, step_optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    # this process's batches: the epochs asked for, or more to reach min_steps
    total = config.max_steps or max(config.epochs * len(train_loader), config.min_steps)
    scheduler = get_scheduler(config.scheduler, optimizer, int(config.warmup_ratio * total), total)
    saver.track(model, optimizer, scheduler, data=order)
    evaluate_fn = evaluate_fn or _evaluation(eval_data, collate_fn, metric_fn, config, accelerator)
    state = FitState(model, optimizer, total=total, batches=len(train_loader))
    if resume:  # weights, optimizer, scheduler, RNGs, history and position in the data
        found = saver.resume()
        if found:
            state.step, state.epoch, state.batch = found.step, found.epoch, found.batch
            state.history = History(**found.history)
    hooks = [*_own_callbacks(config, accelerator), *callbacks, Checkpoints(saver)]
    start = time.perf_counter() - state.history.seconds
    _call(hooks, "on_fit_start", state)
    first = state.epoch
    for state.epoch in range(first, math.ceil(total / len(train_loader))):
        model.train()
        _call(hooks, "on_epoch_start", state)
        batches = skip_first_batches(train_loader, state.batch) if state.batch else train_loader
        for batch in batches:
            loss = model(**batch).loss
            state.loss = _finite(loss.item(), "loss", state, config, saver)
            accelerator.backward(loss)
            if config.max_grad_norm:
                norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                if norm is not None and config.mixed_precision != "fp16":  # fp16 skips inf steps
                    _finite(float(norm), "gradient norm", state, config, saver)
            step_optimizer.step()
            scheduler.step()
            step_optimizer.zero_grad(set_to_none=True)
            state.step, state.batch = state.step + 1, state.batch + 1
            state.history.steps.append({"step": state.step, "epoch": state.epoch,
                                        "loss": state.loss, "lr": scheduler.get_last_lr()[0]})
            _call(hooks, "on_step_end", state)
            if state.stop or state.step >= total:
                break
        state.batch, last = 0, state.stop or state.step >= total
        due = config.eval_every and (state.epoch + 1) % config.eval_every == 0
        if evaluate_fn and (last or due):
            state.metrics = evaluate_fn(model)
            state.history.evals.append({"step": state.step, "epoch": state.epoch + 1,
                                        **state.metrics})
            _call(hooks, "on_evaluate", state)
        state.history.seconds = time.perf_counter() - start
        _call(hooks, "on_epoch_end", state)
        if last or state.stop:
            break
    _call(hooks, "on_fit_end", state)
    state.history.seconds = time.perf_counter() - start
    return state.history


def _call(hooks: Sequence[Callback], name: str, state: FitState) -> None:
    """Call one hook of every callback, in order."""
    for hook in hooks:
        getattr(hook, name)(state)


def _own_callbacks(config: TrainConfig, accelerator: Accelerator) -> list[Callback]:
    """Return the progress bar and TensorBoard writer the config asks for (main process only)."""
    if not accelerator.is_main_process:
        return []
    return [*([Progress()] if config.progress else []),
            *([TensorBoard(config.log_dir)] if config.log_dir else [])]


def _evaluation(eval_data, collate_fn, metric_fn, config: TrainConfig,
                accelerator: Accelerator) -> EvaluateFn | None:
    """Return the evaluation of a model whose outputs hold logits (None without `eval_data`)."""
    if eval_data is None:
        return None
    return partial(evaluate, data=eval_data, collate_fn=collate_fn, metric_fn=metric_fn,
                   batch_size=config.eval_batch_size, accelerator=accelerator)


class TrainingDiverged(validate.InputError):
    """The loss or the gradient norm became NaN or infinite, so training stopped (the message
    names the settings to change: a lower learning rate, say)."""


def _finite(value: float, what: str, state: FitState, config: TrainConfig, saver: Saver) -> float:
    """Return `value` if it is finite; else raise TrainingDiverged naming the step and the fix."""
    if math.isfinite(value):
        return value
    kept = f"; the last good checkpoint is kept in {saver.latest}" if saver.latest else ""
    raise TrainingDiverged(f"training diverged: the {what} became {value} at step "
                           f"{state.step + 1} (epoch {state.epoch + 1}); lower the learning rate "
                           f"(lr={config.lr:g}; try {config.lr / 10:g}){kept}")


def _settings(config: TrainConfig, train_data) -> dict:
    """Return what a resumed run must share with the run it continues (checked on resume)."""
    keys = ("lr", "epochs", "max_steps", "min_steps", "batch_size", "warmup_ratio", "scheduler",
            "weight_decay", "max_grad_norm", "seed", "mixed_precision", "group_by_length")
    return {**{k: getattr(config, k) for k in keys}, "examples": len(train_data)}


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    data,
    *,
    collate_fn=None,
    metric_fn: MetricFn | None = None,
    batch_size: int = 128,
    accelerator: Accelerator | None = None,
    predictions: str = "logits",
) -> dict:
    """Return the mean loss on `data` and, with `metric_fn`, the metrics of its predictions.

    `metric_fn(predictions, labels)` sees the model output named `predictions` (default: the
    logits), gathered over the whole data set and every process.
    """
    validate.not_empty(data, "the evaluation data")
    accelerator = accelerator or Accelerator()
    was_training = model.training
    model.eval()
    eval_loader = accelerator.prepare(loader(data, batch_size, collate_fn, by_length=True))
    losses, logits, labels = [], [], []
    for batch in eval_loader:
        out = model(**batch)
        n = batch["labels"].shape[0]
        losses.append(accelerator.gather_for_metrics(out.loss.detach().repeat(n)))
        logits.append(accelerator.gather_for_metrics(out[predictions]))
        labels.append(accelerator.gather_for_metrics(batch["labels"]))
    model.train(was_training)
    metrics = {"loss": torch.cat(losses).float().mean().item()}
    if metric_fn is not None:
        metrics.update(metric_fn(_cat(logits), _cat(labels)))
    return metrics


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate batches whose second dimension may differ (padded token logits)."""
    if tensors[0].ndim < 2 or len({t.shape[1] for t in tensors}) == 1:
        return torch.cat(tensors)
    width = max(t.shape[1] for t in tensors)
    pad = [torch.nn.functional.pad(t, (0, 0) * (t.ndim - 2) + (0, width - t.shape[1]),
                                   value=-100) for t in tensors]
    return torch.cat(pad)
