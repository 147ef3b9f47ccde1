"""Task families: what differs between kinds of task (see `base.TaskFamily`)."""

from __future__ import annotations

from transfer_lab import validate
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.families.causal import CausalLM
from transfer_lab.families.classification import Classification, classification_metric
from transfer_lab.families.generation import Generation, GenerativeQA
from transfer_lab.families.seq2seq import Seq2Seq
from transfer_lab.families.spans import ExtractiveQA
from transfer_lab.families.tokens import TokenClassification

FAMILIES: dict[str, TaskFamily] = {
    f.name: f for f in (Classification(), TokenClassification(), ExtractiveQA(), Seq2Seq(),
                        CausalLM(), Generation(), GenerativeQA())}
# The family that runs a task family's tasks on a decoder LLM (SmolLM2)
ON_DECODER = {"classification": "causal_lm", "seq2seq": "generation",
              "extractive_qa": "generative_qa"}


def register_family(family: TaskFamily) -> TaskFamily:
    """Add a family to the registry and return it."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> TaskFamily:
    """Return the task family called `name`."""
    return FAMILIES[validate.choice("task family", name, FAMILIES)]


def family_for(task_family: str, decoder: bool = False) -> TaskFamily:
    """Return the family that trains a task of `task_family` on an encoder or a decoder."""
    if not decoder:
        return get_family(task_family)
    if task_family not in ON_DECODER:
        raise validate.InputError(f"{task_family} tasks have no decoder-LLM version here; use an "
                                  "encoder model (tiny, small, minilm), or a task of: "
                                  f"{', '.join(ON_DECODER)}")
    return get_family(ON_DECODER[task_family])


__all__ = ["FAMILIES", "ON_DECODER", "EvaluateFn", "TaskFamily", "classification_metric",
           "family_for", "get_family", "register_family"]
