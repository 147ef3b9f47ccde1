"""Masked-language-model training data: encoding, masking collator, its loss."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import MaskedLMOutput


def encode_mlm(texts: list[str], tokenizer: PreTrainedTokenizerBase,
               max_length: int = 64) -> Dataset:
    """Return unlabeled texts tokenized for masked-language-model pretraining."""
    data = Dataset.from_dict({"text": texts})
    return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length,
                                        return_special_tokens_mask=True),
                    batched=True, remove_columns=["text"])


def mlm_collator(tokenizer: PreTrainedTokenizerBase, probability: float = 0.15, seed: int = 0):
    """Return a collator that masks `probability` of the tokens of each batch."""
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability, seed=seed)


class MaskedTokensOnly(torch.nn.Module):
    """Train a BERT masked-LM scoring only the masked tokens: the same loss, a third less work.

    `BertForMaskedLM` scores every token against the whole vocabulary and then ignores all but
    the 15 % that were masked; on the tiny BERT that head is a third of a training step. This
    wrapper runs the body, keeps the masked positions (`labels != -100`) and applies the head to
    those alone. The loss is the same mean cross-entropy over masked tokens, so the gradients
    are the same up to float rounding (tests/test_models.py). Save the wrapped `mlm`, not this.
    """

    def __init__(self, mlm: PreTrainedModel):
        super().__init__()
        if not hasattr(mlm, "cls"):
            raise TypeError(f"{type(mlm).__name__} has no BERT prediction head (.cls); "
                            "train it without MaskedTokensOnly")
        self.mlm = mlm

    def forward(self, input_ids, labels, attention_mask=None, token_type_ids=None, **_):
        """Return a MaskedLMOutput whose loss and logits cover the masked tokens only."""
        body = getattr(self.mlm, self.mlm.base_model_prefix)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state
        masked = labels != -100
        logits = self.mlm.cls(hidden[masked])
        if logits.shape[0] == 0:  # nothing masked in this batch: no signal, a zero loss
            return MaskedLMOutput(loss=hidden.sum() * 0.0, logits=logits)
        loss = torch.nn.functional.cross_entropy(logits, labels[masked])
        return MaskedLMOutput(loss=loss, logits=logits)
