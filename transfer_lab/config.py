"""Defaults in one place: the training configuration and the profile (quick or full)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from transfer_lab.validate import InputError

PROFILES = ("quick", "full")
INITS = ("supervised", "mlm", "pretrained")  # how θ_S is made (`pipeline.pretrain_source`)
# each task family's headline metric (`families.get_family(name).metric`), readable without torch
METRICS = {"classification": "accuracy", "token_classification": "f1", "extractive_qa": "f1",
           "seq2seq": "bleu", "causal_lm": "accuracy", "generation": "bleu",
           "generative_qa": "f1"}


@dataclass
class TrainConfig:
    """Hyper-parameters of one call to `fit` (chapter 4 explains each)."""

    lr: float = 1e-4
    epochs: int = 30
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    min_steps: int = 0  # train at least this many steps (more epochs when the labels are few)
    batch_size: int = 16
    eval_batch_size: int = 128
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 64
    group_by_length: bool = False  # batch texts of similar length: less padding (benchmarks)
    seed: int = 0
    eval_every: int = 1  # evaluate every this many epochs (0: only at the end)
    mixed_precision: str = "no"  # "fp16"/"bf16" on a GPU, through Accelerate
    log_dir: str | None = None  # write TensorBoard events here when set
    progress: bool = True

    def replace(self, **changes) -> TrainConfig:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict (for results files)."""
        return asdict(self)


# target fine-tuning of a pretrained body runs at least this many steps (benchmarks/recipe.py)
MIN_STEPS_PRETRAINED = 120


@dataclass(frozen=True)
class Profile:
    """Sizes and names that differ between a laptop CPU (quick) and a Colab GPU (full)."""

    name: str
    source_examples: int
    source_steps: int
    test_examples: int
    offline: bool
    backbone: str
    mlm_steps: int
    pretrained_steps: int  # source training of a pretrained body (MiniLM, BERT)
    extra: dict = field(default_factory=dict)


QUICK = Profile("quick", source_examples=20_000, source_steps=600, test_examples=1_000,
                offline=True, backbone="tiny", mlm_steps=3_000, pretrained_steps=80)
FULL = Profile("full", source_examples=100_000, source_steps=6_000, test_examples=5_000,
               offline=False, backbone="bert-base-uncased", mlm_steps=20_000,
               pretrained_steps=2_000)


def profile(name: str | None = None) -> Profile:
    """Return the active profile, read from TRANSFER_LAB_PROFILE (default: quick)."""
    name = name or os.environ.get("TRANSFER_LAB_PROFILE", "quick")
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; set TRANSFER_LAB_PROFILE to one of: "
                         f"{', '.join(PROFILES)}")
    return QUICK if name == "quick" else FULL


def cache_dir() -> Path:
    """Return the folder where θ_S checkpoints are cached (TRANSFER_LAB_CACHE to move it)."""
    default = Path.home() / ".cache" / "transfer_lab"
    return Path(os.environ.get("TRANSFER_LAB_CACHE", default)).expanduser()


def quiet() -> None:
    """Silence library progress bars and load reports (notebooks and the CLI call this)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()


def offline() -> bool:
    """Return True when the hub must not be reached (quick profile or HF_HUB_OFFLINE=1)."""
    return profile().offline or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
