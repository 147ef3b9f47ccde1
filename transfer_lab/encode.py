"""Text → model inputs, per task kind (chapter 4; the other kinds in chapter 5)."""

from __future__ import annotations

from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from . import validate


def encode_classification(data: Dataset, tokenizer: PreTrainedTokenizerBase,
                          max_length: int = 64, *,
                          num_labels: int | None = None) -> Dataset:
    """Return `data` tokenized (input_ids, attention_mask, labels), unpadded.

    The rows are checked first: `text` must hold non-empty strings and `label` class indices
    (below `num_labels` when it is given); a bad row raises one ValueError naming it.
    """
    validate.classification_data(data, num_labels=num_labels, where="the data")

    def tok(batch):
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["labels"] = batch["label"]
        return enc

    return data.map(tok, batched=True, remove_columns=data.column_names)


def encode_mlm(texts: list[str], tokenizer: PreTrainedTokenizerBase,
               max_length: int = 64) -> Dataset:
    """Return unlabeled texts tokenized for masked-language-model pretraining."""
    data = Dataset.from_dict({"text": texts})
    return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length,
                                        return_special_tokens_mask=True),
                    batched=True, remove_columns=["text"])


def classification_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """Return a collator that pads each batch to its longest text (dynamic padding)."""
    return DataCollatorWithPadding(tokenizer)


def mlm_collator(tokenizer: PreTrainedTokenizerBase, probability: float = 0.15, seed: int = 0):
    """Return a collator that masks `probability` of the tokens of each batch."""
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability, seed=seed)
