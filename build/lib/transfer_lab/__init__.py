"""Transfer Lab: transfer learning for language models, measured on a laptop CPU.

One import gives the whole pipeline (chapter 4 walks through it):

    import transfer_lab as tl
    theta_S = tl.pretrain_source("product_sentiment", model="tiny")
    result = tl.compare(theta_S=theta_S, target="film_sentiment", labels=64, seeds=3)
    print(result.table())
"""

__version__ = "0.1.0"

from . import exercises  # tl.exercises.check(...)
from .chapter import Setup, setup_chapter
from .checkpoint import CheckpointError
from .config import TrainConfig, cache_dir, profile, quiet
from .metrics import classification_metrics
from .models import BACKBONES, build_model, count_parameters, get_backbone, load_tokenizer
from .pipeline import Comparison, Run, compare, pretrain_source, transfer
from .predict import predict
from .tasks import TASKS, Task, get_task
from .train import Callback, FitState, History, TrainingDiverged, evaluate, fit
from .userdata import task_from_file

__all__ = [
    "BACKBONES", "TASKS", "Callback", "Comparison", "FitState", "History", "Run", "Setup", "Task",
    "TrainConfig", "build_model", "cache_dir", "classification_metrics", "compare",
    "count_parameters", "evaluate", "fit", "get_backbone", "get_task", "load_tokenizer",
    "exercises", "predict", "pretrain_source", "profile", "quiet", "setup_chapter",
    "task_from_file", "transfer", "TrainingDiverged", "CheckpointError",
]
