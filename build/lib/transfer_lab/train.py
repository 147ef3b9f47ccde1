"""fit() and evaluate(): the training loop, on Accelerate (chapter 4; scale-out in chapter 6).

Nothing here knows a task by name: the model computes its loss, the caller passes the collator
and the metric. The same loop runs on a CPU, a GPU, or several processes (`torchrun`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, skip_first_batches
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import default_data_collator, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import validate
from .checkpoint import Saver
from .config import TrainConfig

MetricFn = Callable[[torch.Tensor, torch.Tensor], dict]


@dataclass
class FitState:
    """What callbacks see: the model, the optimizer, where the loop is, the last numbers."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    loss: float = math.nan
    metrics: dict = field(default_factory=dict)


class Callback:
    """Hooks into `fit`; override the ones you need (progress, plots, unfreezing, ...)."""

    def on_epoch_start(self, state: FitState) -> None:
        """Run before each epoch."""

    def on_step_end(self, state: FitState) -> None:
        """Run after each optimizer step."""

    def on_epoch_end(self, state: FitState) -> None:
        """Run after each epoch (and its evaluation, if any)."""


@dataclass
class History:
    """What `fit` returns: training loss per step and evaluation metrics per epoch."""

    steps: list[dict] = field(default_factory=list)  # {"step", "epoch", "loss", "lr"}
    evals: list[dict] = field(default_factory=list)  # {"step", "epoch", metric: value, ...}
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return the history as plain lists and floats (for JSON)."""
        return asdict(self)


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
    collate_fn=None,
    metric_fn: MetricFn | None = None,
    groups: list[dict] | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> History:
    """Train `model` on `train_data` and return its History (loss per step, metrics per epoch).

    `groups` are the optimizer's parameter groups (default: all trainable weights at
    `config.lr`); fine-tuning strategies (chapter 7) pass their own. With `checkpoint_dir`, a
    checkpoint is written every `checkpoint_every` steps and after each epoch; `resume=True`
    continues from the newest good one, bit for bit (chapter 6). A loss that becomes NaN or
    infinite stops training with `TrainingDiverged`.
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
    total = config.max_steps or config.epochs * len(train_loader)
    epochs = math.ceil(total / len(train_loader))
    optimizer = torch.optim.AdamW(groups or param_groups(model, config.lr, config.weight_decay),
                                  fused=fused(accelerator.device))
    scheduler = get_scheduler(config.scheduler, optimizer, int(config.warmup_ratio * total), total)
    saver.track(model, optimizer, scheduler, data=train_loader.generator)
    model, optimizer, train_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, scheduler)
    writer = _tensorboard(config, accelerator)
    state, history = FitState(model, optimizer), History()
    found = saver.resume() if resume else None  # weights, optimizer, scheduler, RNGs, history
    if found:
        state.step, history = found.step, History(**found.history)
    start_epoch, done = (found.epoch, found.batch) if found else (0, 0)
    start = time.perf_counter() - history.seconds
    show = config.progress and accelerator.is_main_process
    bar = tqdm(total=total, initial=state.step, desc="fit", disable=not show)
    for state.epoch in range(start_epoch, epochs):
        model.train()
        saver.epoch_started()
        for cb in callbacks:
            cb.on_epoch_start(state)
        for batch in skip_first_batches(train_loader, done) if done else train_loader:
            loss = model(**batch).loss
            state.loss = _finite(loss.item(), "loss", state, config, saver)
            accelerator.backward(loss)
            if config.max_grad_norm:
                norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                if norm is not None and config.mixed_precision != "fp16":  # fp16 skips inf steps
                    _finite(float(norm), "gradient norm", state, config, saver)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            done += 1
            lr = scheduler.get_last_lr()[0]
            history.steps.append({"step": state.step, "epoch": state.epoch, "loss": state.loss,
                                  "lr": lr})
            if writer:
                writer.add_scalar("train/loss", state.loss, state.step)
                writer.add_scalar("train/lr", lr, state.step)
            bar.update()
            bar.set_postfix(loss=f"{state.loss:.3f}", refresh=False)
            for cb in callbacks:
                cb.on_step_end(state)
            if state.step >= total:
                break
            saver.step_done(state.step, state.epoch, done, len(train_loader), history)
        done = 0
        last = state.step >= total
        if eval_data is not None and (last or (config.eval_every and
                                               (state.epoch + 1) % config.eval_every == 0)):
            state.metrics = evaluate(model, eval_data, collate_fn=collate_fn, metric_fn=metric_fn,
                                     batch_size=config.eval_batch_size, accelerator=accelerator)
            history.evals.append({"step": state.step, "epoch": state.epoch + 1, **state.metrics})
            if writer:
                for k, v in state.metrics.items():
                    writer.add_scalar(f"eval/{k}", v, state.step)
        for cb in callbacks:
            cb.on_epoch_end(state)
        history.seconds = time.perf_counter() - start
        saver.save(state.step, state.epoch + 1, 0, history)
        if last:
            break
    bar.close()
    if writer:
        writer.close()
    saver.finish()
    history.seconds = time.perf_counter() - start
    return history


class TrainingDiverged(ValueError):
    """The loss or the gradient norm became NaN or infinite, so training stopped."""


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
    keys = ("lr", "epochs", "max_steps", "batch_size", "warmup_ratio", "scheduler",
            "weight_decay", "max_grad_norm", "seed", "mixed_precision", "group_by_length")
    return {**{k: getattr(config, k) for k in keys}, "examples": len(train_data)}


def _tensorboard(config: TrainConfig, accelerator: Accelerator):
    """Return a TensorBoard SummaryWriter when `config.log_dir` is set (main process only)."""
    if not config.log_dir or not accelerator.is_main_process:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(config.log_dir)


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    data,
    *,
    collate_fn=None,
    metric_fn: MetricFn | None = None,
    batch_size: int = 128,
    accelerator: Accelerator | None = None,
) -> dict:
    """Return the mean loss on `data` and, with `metric_fn`, the metrics of its predictions."""
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
        logits.append(accelerator.gather_for_metrics(out.logits))
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
