"""Training: `fit` and its callbacks, evaluation, checkpoints. It knows no task or family."""

from transfer_lab.training.checkpoint import CheckpointError, write_atomically
from transfer_lab.training.loop import (
    Callback,
    Checkpoints,
    FitState,
    History,
    Progress,
    TensorBoard,
    TrainingDiverged,
    evaluate,
    fit,
    fused,
    loader,
    param_groups,
)

__all__ = ["Callback", "CheckpointError", "Checkpoints", "FitState", "History", "Progress",
           "TensorBoard", "TrainingDiverged", "evaluate", "fit", "fused", "loader",
           "param_groups", "write_atomically"]
