"""The same transfer() on two CPU processes (torchrun, DDP over gloo) follows one (chapter 6)."""

import pytest
import torch

from transfer_lab import build_model
from transfer_lab.lab import distributed
from transfer_lab.training import distributed as generic

TOLERANCE = 1e-4  # float32 rounding is ~1e-7 here; dropout on moves the loss by ~1e-2


@pytest.fixture(scope="module")
def one() -> dict:
    """Return a 1-process run: 20 steps of global batch 16, dropout off."""
    return distributed.run(steps=20, global_batch=16)


@pytest.mark.slow
def test_two_processes_follow_one_process(one):
    two = distributed.launch(2, steps=20, global_batch=16)
    assert (two["processes"], two["per_process_batch"], two["backend"]) == (2, 8, "gloo")
    assert len(two["loss"]) == len(one["loss"]) == 20
    assert two["lr"] == pytest.approx(one["lr"], abs=1e-12)
    assert distributed.max_difference(one, two) < TOLERANCE
    assert two["run"]["accuracy"] == pytest.approx(one["run"]["accuracy"], abs=0.02)


def test_a_run_is_a_transfer_run(one):
    assert (one["processes"], one["per_process_batch"], one["backend"]) == (1, 16, "none")
    assert one["steps"] == 20 and not one["dropout"] and one["theta"] is None
    assert one["run"]["seed"] == 0 and one["run"]["score"] == one["run"]["accuracy"]
    assert one["run"]["train_loss"] == pytest.approx(one["loss"])  # one process: its own loss


def test_comparison_sees_a_real_difference(one):
    with_dropout = distributed.run(steps=20, global_batch=16, dropout=True)
    assert with_dropout["loss"][0] != one["loss"][0]
    assert distributed.max_difference(one, with_dropout) > 10 * TOLERANCE


def test_global_batch_must_split_over_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="multiple of 3"):
        distributed.run(steps=2, global_batch=16)


def test_runs_of_different_length_are_not_compared():
    with pytest.raises(ValueError, match="differ in length"):
        distributed.max_difference({"loss": [0.1, 0.2]}, {"loss": [0.1]})


def test_without_dropout_zeroes_every_dropout():
    model = generic.without_dropout(build_model("tiny", num_classes=2))
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.0


def test_flags_spell_run_arguments_for_the_command_line():
    flags = generic._flags({"global_batch": 8, "dropout": True, "theta": None,
                            "mixed_precision": "bf16"})
    assert flags == ["--global-batch", "8", "--dropout", "--mixed-precision", "bf16"]
    assert generic._flags({"dropout": False}) == []


def test_training_imports_no_task_family_or_data_module():
    import ast
    from pathlib import Path

    for path in Path(generic.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        bad = [m for m in imported if m.startswith(("transfer_lab.data", "transfer_lab.families",
                                                    "transfer_lab.models", "transfer_lab.lab",
                                                    "transfer_lab.pipeline"))]
        assert not bad, (path.name, bad)
