"""Transfer Lab: transfer learning for language models, measured on a laptop CPU.

One import gives the whole pipeline (chapter 4 walks through it):

    import transfer_lab as tl
    theta_S = tl.pretrain_source("product_sentiment", model="tiny")
    result = tl.compare("film_sentiment", theta_S=theta_S, labels=64, seeds=3)
    print(result.table())

Every task family (classification, NER, QA, translation) goes through the same three calls;
`tl.FAMILIES` lists them and `tl.TASKS` their tasks.
"""

__version__ = "0.1.0"

from . import exercises  # tl.exercises.check(...)
from .chapter import Setup, setup_chapter
from .checkpoint import CheckpointError
from .config import TrainConfig, cache_dir, offline, profile, quiet
from .families import FAMILIES, TaskFamily, get_family
from .metrics import classification_metrics
from .models import BACKBONES, build_model, count_parameters, get_backbone, load_tokenizer
from .pipeline import Selection, compare, pretrain_source, target_data, transfer
from .predict import predict
from .results import Comparison, Run
from .tasks import CORPORA, TASKS, Task, get_task
from .train import Callback, FitState, History, TrainingDiverged, evaluate, fit
from .transferability import domain_overlap, vocabulary_overlap
from .userdata import task_from_file

__all__ = [
    "BACKBONES", "CORPORA", "Selection", "FAMILIES", "TASKS", "TaskFamily", "get_family", "offline",
    "target_data", "Callback", "Comparison", "FitState", "History", "Run", "Setup", "Task",
    "TrainConfig", "build_model", "cache_dir", "classification_metrics", "compare",
    "count_parameters", "evaluate", "fit", "get_backbone", "get_task", "load_tokenizer",
    "exercises", "predict", "pretrain_source", "profile", "quiet", "setup_chapter",
    "task_from_file", "transfer", "TrainingDiverged", "CheckpointError", "domain_overlap",
    "vocabulary_overlap",
]
