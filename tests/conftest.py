"""Shared test set-up: offline hub, quiet libraries, a cache for θ_S checkpoints."""

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).parents[1]
CACHE = ROOT / ".cache" / "transfer_lab"
os.environ.setdefault("TRANSFER_LAB_CACHE", str(CACHE))

import pytest  # noqa: E402

import transfer_lab as tl  # noqa: E402

tl.quiet()


@pytest.fixture(scope="session")
def theta_S_small() -> Path:
    """Return a small supervised θ_S (tiny model, 3,000 product reviews, 250 steps), cached.

    The cache is locked while θ_S trains, so parallel test workers train it once.
    """
    config = tl.TrainConfig(lr=1e-3, batch_size=32, max_steps=250, warmup_ratio=0.06,
                            eval_every=0, progress=False)
    return tl.pretrain_source("product_sentiment", "tiny", "supervised", examples=3000,
                              config=config)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """Return the real SmolLM2 tokenizer (from the cache if built, else from the GGUF file)."""
    from transfer_lab.models import smollm2

    return smollm2.load_smollm2_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama_theta(tmp_path_factory, smollm2_tokenizer) -> Path:
    """Return a folder holding a tiny random Llama and SmolLM2's tokenizer (a stand-in θ)."""
    from transfer_lab.models import smollm2

    folder = tmp_path_factory.mktemp("tiny-llama")
    smollm2.tiny_llama(smollm2_tokenizer).save_pretrained(folder)
    smollm2_tokenizer.save_pretrained(folder)
    return folder


def pytest_collection_modifyitems(config, items) -> None:
    """Run the notebooks first, the longest first (by benchmarks/results/book.json), so that in
    `make test` no worker starts a long chapter when the other is nearly done (book/conftest.py
    gives their cells a longer output wait)."""
    results = ROOT / "benchmarks" / "results" / "book.json"
    if not results.exists():
        return
    seconds = {str(ROOT / "book" / row["notebook"]): row["seconds"]
               for row in json.loads(results.read_text())["notebooks"]}
    items.sort(key=lambda item: -seconds.get(str(item.path), -1))  # stable: cells keep order
