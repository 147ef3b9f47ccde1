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

from typing import TYPE_CHECKING

from transfer_lab.lazy import lazy_names

# name -> the module that defines it; imported on first use (PEP 562), so that
# `transfer-lab --help` and `import transfer_lab` load neither torch nor transformers
_PUBLIC = {
    "transfer_lab.config": ("TrainConfig", "cache_dir", "offline", "profile", "quiet"),
    "transfer_lab.data.tasks": ("CORPORA", "TASKS", "Task", "get_task"),
    "transfer_lab.data.userdata": ("task_from_file",),
    "transfer_lab.families": ("FAMILIES", "TaskFamily", "get_family"),
    "transfer_lab.lab.chapter": ("Setup", "setup_chapter"),
    "transfer_lab.lab.transferability": ("domain_overlap", "vocabulary_overlap"),
    "transfer_lab.metrics": ("classification_metrics",),
    "transfer_lab.models": ("BACKBONES", "build_model", "count_parameters", "get_backbone",
                            "load_tokenizer"),
    "transfer_lab.pipeline": ("Selection", "compare", "pretrain_source", "target_data",
                              "transfer"),
    "transfer_lab.predict": ("predict",),
    "transfer_lab.results": ("Comparison", "Run"),
    "transfer_lab.stats": ("summarize", "paired_bootstrap", "paired_difference", "t_interval"),
    "transfer_lab.training": ("Callback", "CheckpointError", "FitState", "History",
                              "TrainingDiverged", "evaluate", "fit"),
    "transfer_lab.validate": ("InputError",),
}
_SUBMODULES = {"exercises": "transfer_lab.lab.exercises"}  # tl.exercises.check(...)
__getattr__, __dir__, __all__ = lazy_names(__name__, _PUBLIC, _SUBMODULES)


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from transfer_lab.config import TrainConfig, cache_dir, offline, profile, quiet  # noqa: F401
    from transfer_lab.data.tasks import CORPORA, TASKS, Task, get_task  # noqa: F401
    from transfer_lab.pipeline import compare, pretrain_source, transfer  # noqa: F401
    from transfer_lab.results import Comparison, Run  # noqa: F401
    from transfer_lab.training import fit  # noqa: F401
