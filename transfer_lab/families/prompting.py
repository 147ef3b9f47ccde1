"""Prompts of a decoder LLM: plain-text and chat prompts, label-word scores, calibration."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from transfer_lab.validate import InputError


def chat_prompt(tokenizer, instruction: str, text: str,
                examples: Sequence[tuple[str, str]] = (), system: str | None = None,
                field: str = "Review") -> str:
    """Return the chat prompt that asks `instruction` about `text`, after k answered examples.

    Each example is a user turn ("{field}: {text}\\n{instruction}") and an assistant turn holding
    its label word; the prompt ends with the assistant header, so the next token is the answer.
    Without `system` the template's own system message is used.
    """
    messages = [{"role": "system", "content": system}] if system else []
    for example_text, answer in examples:
        messages += [{"role": "user", "content": f"{field}: {example_text}\n{instruction}"},
                     {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": f"{field}: {text}\n{instruction}"})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _encode(tokenizer, text: str) -> list[int]:
    """Return the token ids of a prompt string (the template already holds special tokens)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def completion_prompt(text: str, examples: Sequence[tuple[str, str]] = (),
                      field: str = "Review", cue: str = "Sentiment", header: str = "") -> str:
    """Return the plain-text prompt "{field}: {text}\n{cue}:" after k answered examples.

    No chat template: the prompt reads like a labelled list, each example as "{field}: {text}"
    and "{cue}: {label word}" followed by a blank line, so the next token is the answer word
    (after a space). `header` (an instruction, the list of labels) comes first.
    """
    shown = "".join(f"{field}: {t}\n{cue}: {answer}\n\n" for t, answer in examples)
    return f"{header}{shown}{field}: {text}\n{cue}:"


def label_token_ids(tokenizer, words: Sequence[str], after: str | None = None) -> list[int]:
    """Return the token id of each label word as it follows `after`.

    `after` is how the prompts end: by default the chat template's assistant header, where an
    answer starts right after "assistant\\n"; after a cue such as "Sentiment:" the word follows
    a space. A word is scored by the token the model would generate first there; a word that is
    several tokens there is refused.
    """
    if after is None:
        after = tokenizer.apply_chat_template([{"role": "user", "content": "?"}],
                                              add_generation_prompt=True, tokenize=False)
    space = "" if after[-1:].isspace() else " "
    start = _encode(tokenizer, after)
    ids = []
    for word in words:
        full = _encode(tokenizer, after + space + word)
        pieces = tokenizer.convert_ids_to_tokens(full[len(start):])
        if full[:len(start)] != start or len(pieces) != 1:
            raise InputError(f"label word {word!r} is not one token after {after[-20:]!r} "
                             f"(pieces: {pieces}); choose single-token label words, "
                             f"e.g. 'positive'/'negative'")
        ids.append(full[-1])
    if len(set(ids)) < len(ids):
        raise InputError(f"label words {list(words)} share a token; choose distinct words")
    return ids


def cut_middle(ids: list[int], max_length: int) -> list[int]:
    """Return `ids` cut to `max_length` by dropping the middle: keep ¼ start and ¾ end."""
    if len(ids) <= max_length:
        return ids
    head = max_length // 4
    return ids[:head] + ids[len(ids) - (max_length - head):]


def _encode_all(tokenizer, prompts: Sequence[str], max_length: int) -> list[list[int]]:
    """Return the token ids of each prompt, its middle cut (with one warning) if too long."""
    encoded = [_encode(tokenizer, prompt) for prompt in prompts]
    long = sum(len(ids) > max_length for ids in encoded)
    if long:
        warnings.warn(f"{long} of {len(encoded)} prompts were longer than {max_length} tokens; "
                      f"their middle was cut to keep {max_length}", stacklevel=3)
    return [cut_middle(ids, max_length) for ids in encoded]


def _last_positions(model, encoded: list[list[int]], pad_id: int, batch_size: int,
                    prefix_cache: bool, forward) -> torch.Tensor:
    """Return `forward(...)` at each prompt's last token, stacked in the prompts' order.

    Prompts run in batches of similar length, left-padded, with position ids counted from each
    prompt's first real token, so padding does not change a result. With `prefix_cache`, the
    tokens every prompt starts with are run once (`shared_prefix`) and their keys and values
    are reused by every batch. `forward(input_ids, mask, positions, extra)` returns one row
    per prompt.
    """
    shared = shared_prefix(encoded) if prefix_cache else 0
    device = next(model.parameters()).device
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    out = None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        prefix = _prefix_cache(model, encoded[0][:shared], device) if shared else None
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            input_ids, mask = pad_left([encoded[i][shared:] for i in rows], pad_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
            extra = {}
            if prefix is not None:  # the batch attends to the prefix's keys and values too
                cache = copy.deepcopy(prefix)
                cache.batch_repeat_interleave(len(rows))
                mask = torch.cat([mask.new_ones(len(rows), shared), mask], dim=1)
                extra = {"cache": cache, "use_cache": True}
            values = forward(input_ids, mask, positions, extra).float().cpu()
            if out is None:
                out = torch.empty(len(encoded), *values.shape[1:])
            out[torch.as_tensor(rows)] = values
    model.train(was_training)
    return out


def score_labels(model, tokenizer, prompts: Sequence[str], token_ids: Sequence[int],
                 batch_size: int = 16, max_length: int = 512,
                 prefix_cache: bool = True) -> torch.Tensor:
    """Return log p(label token | prompt) for each prompt and label: shape (n, num_labels).

    Padding does not change a prompt's scores. A prompt longer than `max_length` tokens loses
    its middle: the template's start (system message, first example) and its end (the question
    and the assistant header) are kept. With `prefix_cache` (default), the tokens all prompts
    share (the system message and the few-shot examples) are computed once, not per prompt.
    """
    labels = list(token_ids)
    if not prompts:
        return torch.empty(0, len(labels))

    def forward(input_ids, mask, positions, extra):
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                       logits_to_keep=1, **extra).logits[:, -1].float()
        return logits.log_softmax(-1)[:, labels]

    encoded = _encode_all(tokenizer, prompts, max_length)
    return _last_positions(model, encoded, tokenizer.pad_token_id, batch_size, prefix_cache,
                           forward)


def last_hidden_states(model, tokenizer, prompts: Sequence[str], batch_size: int = 16,
                       max_length: int = 512, prefix_cache: bool = True) -> torch.Tensor:
    """Return the last layer's hidden state at each prompt's last token: shape (n, hidden).

    These are the features the LM head reads to choose the next token: a linear probe on them
    is a classifier on the frozen model (ch-decoder).
    """
    decoder = model.get_decoder()
    if not prompts:
        return torch.empty(0, model.config.hidden_size)

    def forward(input_ids, mask, positions, extra):
        out = decoder(input_ids=input_ids, attention_mask=mask, position_ids=positions, **extra)
        return out.last_hidden_state[:, -1]

    encoded = _encode_all(tokenizer, prompts, max_length)
    return _last_positions(model, encoded, tokenizer.pad_token_id, batch_size, prefix_cache,
                           forward)


MIN_PREFIX = 8  # fewer shared tokens than this are not worth a cache


def shared_prefix(encoded: Sequence[Sequence[int]]) -> int:
    """Return how many leading tokens all prompts share (0 if fewer than MIN_PREFIX).

    Every prompt keeps at least its last token after the prefix: the scores are read there.
    """
    if len(encoded) < 2:
        return 0
    first, shortest = encoded[0], min(len(ids) for ids in encoded)
    n = 0
    while n < shortest - 1 and all(ids[n] == first[n] for ids in encoded):
        n += 1
    return n if n >= MIN_PREFIX else 0


def _prefix_cache(model, ids: list[int], device):
    """Return the key/value cache of one run of the model over the prefix `ids`."""
    out = model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1)
    return out.cache


def pack(sequences: Sequence[Sequence[int]]) -> tuple[dict, list[int]]:
    """Return the sequences as one row of model inputs, and the index of each one's last token.

    The row holds the tokens they all start with once, then each one's rest. The attention mask
    (4-D, additive) lets a token see the shared start and the earlier tokens of its own sequence
    only, and each rest's position ids continue from the shared start, so every token gets the
    hidden state it would get alone: the logits, the loss and its gradient equal the padded
    batch's up to rounding, for fewer tokens (SmolLM2's system message once, not once per
    example) and no padding. Attention then costs (row length)² instead of batch × length²,
    which is small beside the matmuls for the family's batches (8 × ≈ 60 tokens).
    """
    shared = shared_prefix(sequences)
    ids, positions, spans = list(sequences[0][:shared]), list(range(shared)), []
    for seq in sequences:
        spans.append((len(ids), len(ids) + len(seq) - shared))
        ids += seq[shared:]
        positions += range(shared, len(seq))
    own = torch.zeros(len(ids), len(ids), dtype=torch.bool)
    own[:, :shared] = True  # every token may see the shared start
    for start, end in spans:
        own[start:end, start:end] = True
    allowed = own & torch.ones_like(own).tril()  # and only what came before it
    mask = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    row = {"input_ids": torch.tensor([ids]), "attention_mask": mask[None, None],
           "position_ids": torch.tensor([positions])}
    return row, [end - 1 for _, end in spans]


def pad_left(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (input_ids, attention_mask) with every sequence left-padded to the longest."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
    return input_ids, mask


def calibrate(scores: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Return label scores with the prompt's prior removed: minus each label's mean over
    `reference`, the scores of unlabeled texts of the same kind in the same prompt.

    A prompt (above all one with examples) can make one label word likely whatever the text;
    centring each label on texts whose labels are never read removes that shift and keeps the
    ranking (contextual calibration, Zhao et al. 2021, with real texts for the content-free
    input). It assumes the classes are about equally common.
    """
    if len(reference) == 0:
        return scores
    return scores - reference.mean(0)


def next_tokens(model, tokenizer, prompt: str, k: int = 5) -> list[tuple[str, float]]:
    """Return the k most likely next tokens after `prompt` with their probabilities."""
    ids = torch.tensor([_encode(tokenizer, prompt)], device=next(model.parameters()).device)
    with torch.inference_mode():
        probs = model(input_ids=ids, logits_to_keep=1).logits[0, -1].float().softmax(-1)
    top = probs.topk(k)
    return [(tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices,
                                                                    strict=True)]


def predict_labels(model, tokenizer, prompts: Sequence[str], token_ids: Sequence[int],
                   **kwargs) -> torch.Tensor:
    """Return the index of the most likely label word for each prompt."""
    return score_labels(model, tokenizer, prompts, token_ids, **kwargs).argmax(-1)


def few_shot_examples(texts: Sequence[str], labels: Sequence[int], k: int, seed: int,
                      label_names: Sequence[str]) -> list[tuple[str, str]]:
    """Return k seeded (text, label word) examples, as balanced over the classes as they allow.

    Classes take turns (in a seeded order) until k are drawn; the examples are then shuffled
    so the last one, nearest the question, is not always the same class.
    """
    if k > len(texts):
        raise InputError(f"k={k} examples asked but only {len(texts)} texts given; lower k")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in rng.permutation(
        np.unique(labels))]
    chosen = []
    while len(chosen) < k:
        for pool in pools:
            if pool and len(chosen) < k:
                chosen.append(pool.pop())
    chosen = rng.permutation(chosen)
    return [(texts[int(i)], label_names[int(labels[i])]) for i in chosen]
