"""Sequence to sequence (translation): a BERT encoder–decoder, BLEU, chrF (ch-app-translation)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import (
    BertConfig,
    BertModel,
    DataCollatorForSeq2Seq,
    EncoderDecoderConfig,
    PreTrainedTokenizerBase,
)
from transformers import EncoderDecoderModel as _EncoderDecoderModel

from transfer_lab.config import TrainConfig
from transfer_lab.data.tasks import Task
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.metrics import translation_metrics
from transfer_lab.models import load_tokenizer, model_config
from transfer_lab.validate import InputError


class EncoderDecoderModel(_EncoderDecoderModel):
    """🤗 Transformers' EncoderDecoderModel (same name, same checkpoints), minus one warning.

    Its forward warns on every training step (a FutureWarning) that v4.12 moved the loss into
    the encoder-decoder; our models never ran on an older version. The warning is silenced
    while the model runs, and nowhere else.
    """

    def forward(self, *args, **kwargs):
        """Run 🤗's forward without its v4.12 loss FutureWarning."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way",
                                    category=FutureWarning)
            return super().forward(*args, **kwargs)


class Seq2Seq(TaskFamily):
    """An encoder–decoder whose encoder and decoder start from one BERT θ (BERT2BERT)."""

    name = "seq2seq"
    metric = "bleu"
    columns = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact %"}
    points = 1.0  # sacrebleu's scores are 0..100
    bounds = (0.0, 100.0)
    unit = "training pairs"
    source, target = "bilingual", "toy_translation"
    init = "mlm"  # θ_S: a masked-LM on unaligned text of both languages
    labels = 1_000

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a BERT encoder–decoder from θ (encoder and decoder) or random (seeded)."""
        return build_seq2seq(theta, model, seed)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return pairs tokenized: the source's ids, the target's as labels."""
        return encode_seq2seq(data, tokenizer, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
        """Return a collator that pads inputs with [PAD] and labels with -100."""
        return seq2seq_collator(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return BLEU, chrF and the exact share (0..100) of beam-search translations.

        The translations themselves are kept under "hypotheses".
        """
        sources, references = list(test["source"]), list(test["target"])

        def evaluate(model: torch.nn.Module) -> dict:
            hypotheses = translate(model, tokenizer, sources)
            exact = np.mean([h == r for h, r in zip(hypotheses, references, strict=True)])
            return {**translation_metrics(hypotheses, references),
                    "exact_match": 100 * float(exact), "hypotheses": hypotheses}

        return evaluate

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training (a pretrained BERT, full profile)."""
        return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1,
                           eval_every=0, progress=False)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of fine-tuning both arms: a fixed number of steps."""
        return TrainConfig(lr=3e-3, max_steps=150, batch_size=32, warmup_ratio=0.1,
                           max_length=32, eval_every=0, progress=False)


# --- encoding and the model -------------------------------------------------------------

def encode_seq2seq(data: Dataset, tokenizer: PreTrainedTokenizerBase,
                   max_length: int = 32) -> Dataset:
    """Return pairs tokenized: input_ids, attention_mask of the source; labels of the target.

    Labels are the target's ids after [CLS] (…, [SEP]): the decoder starts from [CLS]
    (`decoder_start_token_id`) and stops at [SEP] (`eos_token_id`).
    """
    def tok(batch):
        enc = tokenizer(batch["source"], truncation=True, max_length=max_length)
        labels = tokenizer(batch["target"], truncation=True, max_length=max_length + 1)
        enc["labels"] = [ids[1:] for ids in labels["input_ids"]]
        return enc

    return data.map(tok, batched=True, remove_columns=data.column_names)


def seq2seq_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
    """Return a collator that pads inputs with [PAD] and labels with -100 (ignored by the loss)."""
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


def set_special_tokens(model: EncoderDecoderModel,
                       tokenizer: PreTrainedTokenizerBase) -> EncoderDecoderModel:
    """Set start, end and pad tokens on the config AND the generation config; return the model."""
    ids = {"decoder_start_token_id": tokenizer.cls_token_id, "bos_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
    for cfg in (model.config, model.generation_config):
        for k, v in ids.items():
            setattr(cfg, k, v)
    return model


WARM_STARTS = ("both", "encoder")


def build_seq2seq(theta: str | Path | None = None, backbone: str = "tiny", seed: int = 0,
                  warm_start: str = "both") -> EncoderDecoderModel:
    """Return a BERT encoder–decoder, initialised from θ (a BERT checkpoint) or random (seeded).

    The decoder is the same BERT with `is_decoder=True, add_cross_attention=True`; its
    cross-attention starts at random in every arm. `warm_start="both"` loads θ into the
    encoder and the decoder (BERT2BERT), `"encoder"` only into the encoder (BERT2RND).
    """
    if warm_start not in WARM_STARTS:
        raise InputError(f"unknown warm_start {warm_start!r}; choose one of: "
                         f"{', '.join(WARM_STARTS)}")
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(str(theta) if theta else backbone)
    if theta is not None and warm_start == "both":
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(theta), str(theta))
    else:
        encoder = model_config(backbone)
        decoder = BertConfig(**{**encoder.to_dict(), "is_decoder": True,
                                "add_cross_attention": True})
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
        model = EncoderDecoderModel(config=config)
        if theta is not None:
            body = BertModel.from_pretrained(str(theta), add_pooling_layer=False)
            loaded = model.encoder.load_state_dict(body.state_dict(), strict=False)
            if loaded.unexpected_keys or any("pooler" not in k for k in loaded.missing_keys):
                raise InputError(f"θ {theta} does not fit the {backbone!r} encoder: {loaded}")
    return set_special_tokens(model, tokenizer)


@torch.inference_mode()
def translate(model: EncoderDecoderModel, tokenizer: PreTrainedTokenizerBase, sentences: list[str],
              *, num_beams: int = 4,
              max_new_tokens: int = 24, batch_size: int = 256) -> list[str]:
    """Return the model's translations of `sentences` (beam search)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(sentences), batch_size):
        enc = tokenizer(sentences[i:i + batch_size], padding=True, return_tensors="pt",
                        return_token_type_ids=False).to(device)
        ids = model.generate(**enc, num_beams=num_beams, max_new_tokens=max_new_tokens,
                             do_sample=False)
        out += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [" ".join(s.split()) for s in out]


@torch.inference_mode()
def word_similarity(encoder, tokenizer: PreTrainedTokenizerBase, words: list[str],
                    template: str = "the plot was {} .") -> float:
    """Return the mean cosine similarity of the encoder's vectors of `words` in one context.

    Near 1, the encoder gives every word of the list almost the same vector, and a decoder
    reading it cannot tell which of them the sentence used.
    """
    encoder.eval()
    enc = tokenizer([template.format(w) for w in words], return_tensors="pt", padding=True,
                    return_token_type_ids=False)
    position = tokenizer.tokenize(template.format("[MASK]")).index("[MASK]") + 1  # after [CLS]
    vectors = encoder(**enc).last_hidden_state[:, position]
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    n = len(words)
    return float(((vectors @ vectors.T).sum() - n) / (n * n - n))
