"""Use a fine-tuned θ_T*: label names and probabilities for new texts (the course page).

    tl.predict("runs/my-model", ["a superb film", "dreadful"])
    transfer-lab predict --model runs/my-model "a superb film" "dreadful"
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from transfer_lab import validate
from transfer_lab.models import load_tokenizer
from transfer_lab.validate import InputError


def load_classifier(folder: str | Path):
    """Return (model, tokenizer) of a folder written by `transfer-lab run --save`."""
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"{str(folder)!r} is not a saved model (no config.json); pass the folder "
                         "of `transfer-lab run --save DIR`")
    if validate.head_size(json.loads((folder / "config.json").read_text())) is None:
        raise InputError(f"{str(folder)!r} holds no classifier (e.g. a masked-LM θ_S); pass the "
                         "folder of `transfer-lab run --save DIR`")
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return model.eval(), load_tokenizer(str(folder))


@torch.inference_mode()
def predict(
    folder: str | Path, texts: list[str], max_length: int | None = None, batch_size: int = 32
) -> list[dict]:
    """Return, for each text, its predicted label name and the probability of every label.

    Texts are truncated to `max_length` tokens (default: the length θ_T* was fine-tuned with).
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"text {i} ({t!r}) is not a non-empty string; give texts to classify")
    if not texts:
        raise InputError("no texts to classify; give at least one")
    model, tokenizer = load_classifier(folder)
    card = Path(folder) / "theta_T.json"
    trained = json.loads(card.read_text()).get("max_length") if card.is_file() else None
    max_length = max_length or trained or 128
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        batch = tokenizer(chunk, truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt")
        probs = model(**batch).logits.softmax(-1)
        for text, p in zip(chunk, probs.tolist(), strict=True):
            best = max(range(len(p)), key=p.__getitem__)
            out.append({"text": text, "label": names[best],
                        "probabilities": dict(zip(names, p, strict=True))})
    return out

