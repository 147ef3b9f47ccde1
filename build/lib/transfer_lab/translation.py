"""Translation: English → a rule-based toy language, with BERT-initialised encoder–decoders (ch. 5).

The toy language (chapter 5, "Translation") takes its words from `world.toy_lexicon()` and
reorders them with three rules: articles are dropped, an adjective follows its noun, and the
verb goes to the end of its clause; punctuation is dropped. An `EncoderDecoderModel` learns it
from parallel pairs, its encoder and decoder initialised from a BERT checkpoint θ_S (transfer,
Rothe et al. 2020) or at random with the same architecture (scratch). Hub pairs (full profile)
load with `datasets.load_dataset` and map to the same columns: `source`, `target`.
"""

from __future__ import annotations

import random
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import (
    BertConfig,
    BertModel,
    DataCollatorForSeq2Seq,
    EncoderDecoderConfig,
    EncoderDecoderModel,
)

from . import world
from .config import TrainConfig, cache_dir
from .metrics import translation_metrics
from .models import load_tokenizer, model_config
from .tasks import SPLIT_SEEDS, Task, register
from .train import History, fit

ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = frozenset({".", ","})
BOUNDARIES = frozenset({"and", "but"})
VERBS = frozenset("is was saw watched bought ordered picked got".split())
ADJECTIVES = frozenset(world.POSITIVE + world.NEGATIVE + world.FOOD_POSITIVE + world.FOOD_NEGATIVE)
MODIFIERS = frozenset(world.INTENSIFIERS)
NOUNS = frozenset(w for d in world.DOMAINS.values() for w in d["items"] + d["aspects"])
DOMAIN = "films"  # sentences about films: a vocabulary of about a hundred words
SUBJECTS = ["i", "we", *world.PEOPLE[:6]]
PLACES = world.PLACES[:6]
OBJECT_VERBS = ("saw", "watched", "picked")
MAX_WORDS = 10
_DEPRECATED_LOSS = "Version v4.12.0 introduces a better way"


# --- the toy language -------------------------------------------------------------------

@lru_cache(maxsize=1)
def lexicon() -> dict[str, str]:
    """Return the toy language's word for each English word (`world.toy_lexicon()`)."""
    return world.toy_lexicon()


def reorder(words: list[str]) -> list[str]:
    """Return a clause's words in toy order: no articles, adjective after noun, verb last."""
    words = [w for w in words if w not in ARTICLES]
    out: list[str] = []
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and words[j] in MODIFIERS:
            j += 1
        if j < len(words) - 1 and words[j] in ADJECTIVES and words[j + 1] in NOUNS:
            out += [words[j + 1], *words[i:j + 1]]  # "very good film" → "film very good"
            i = j + 2
        else:
            out.append(words[i])
            i += 1
    verbs = [w for w in out if w in VERBS][:1]
    return [w for w in out if w not in verbs] + verbs


def to_toy(english: str) -> str:
    """Return the toy-language translation of an English sentence of the world."""
    lex = lexicon()
    clauses: list[list[str]] = [[]]
    for word in english.lower().split():
        if word in PUNCTUATION:
            clauses.append([])
        elif word in BOUNDARIES:
            clauses += [[word], []]
        else:
            clauses[-1].append(word)
    toy = []
    for words in clauses:
        for word in words if words[:1] and words[0] in BOUNDARIES else reorder(words):
            if word not in lex:
                raise ValueError(f"{word!r} is not in the toy lexicon; use words of "
                                 "world.vocabulary() (see world.toy_lexicon())")
            toy.append(lex[word])
    return " ".join(toy)


def english_sentence(rng: random.Random, max_words: int = MAX_WORDS) -> str:
    """Return one seeded English sentence about films (at most `max_words` words)."""
    kind = rng.random()
    if kind < 0.4:
        text = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.3)
    elif kind < 0.7:
        first = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.2)
        second = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.2)
        text = f"{first} {rng.choice(('and', 'but'))} {second}"
    else:
        adjective = rng.choice(world.adjectives(DOMAIN)[rng.randrange(2)])
        modifier = f"{rng.choice(world.INTENSIFIERS)} " if rng.random() < 0.3 else ""
        text = (f"{rng.choice(SUBJECTS)} {rng.choice(OBJECT_VERBS)} a {modifier}{adjective} "
                f"{rng.choice(world.DOMAINS[DOMAIN]['items'])} in {rng.choice(PLACES)}")
    if len(text.split()) > max_words:
        return english_sentence(rng, max_words)
    return text + " ."


def toy_pairs(n: int, seed: int) -> Dataset:
    """Return n seeded English → toy-language pairs (columns: source, target)."""
    rng = random.Random(f"translation/{seed}")
    sources = [english_sentence(rng) for _ in range(n)]
    return Dataset.from_dict({"source": sources, "target": [to_toy(s) for s in sources]})


def _toy_loader(split: str, n: int, seed: int) -> Dataset:
    """Return a split of the toy translation task (train and test from different streams)."""
    return toy_pairs(n, 1000 * SPLIT_SEEDS[split] + (seed if split == "train" else 0))


# --- hub pairs (full profile) -----------------------------------------------------------

@dataclass(frozen=True)
class PairSpec:
    """Where a hub translation corpus lives, its language pair and its splits."""

    path: str
    config: str
    source: str  # language code of the source side of each "translation" dict
    target: str
    splits: dict[str, str]  # our split → the hub's split ("train[:95%]" style slices allowed)


HUB_PAIRS = {
    "opus_books_en_fr": PairSpec("Helsinki-NLP/opus_books", "en-fr", "en", "fr",
                                 {"train": "train[:95%]", "test": "train[95%:]"}),
    "wmt16_de_en": PairSpec("wmt/wmt16", "de-en", "de", "en",
                            {"train": "train", "test": "test"}),
}


def standardize_pairs(ds: Dataset, spec: PairSpec) -> Dataset:
    """Return a hub split ({"translation": {lang: text}}) mapped to columns source, target."""
    def split(batch):
        return {"source": [t[spec.source] for t in batch["translation"]],
                "target": [t[spec.target] for t in batch["translation"]]}

    return ds.map(split, batched=True, remove_columns=ds.column_names)


def _hub_pair_loader(name: str, spec: PairSpec):
    """Return a loader for a hub translation pair (Task.load says when the hub is offline)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        from datasets import load_dataset

        ds = load_dataset(spec.path, spec.config, split=spec.splits[split])
        ds = standardize_pairs(ds, spec).shuffle(seed=seed)
        return ds.select(range(min(n, len(ds))))

    return load


TOY = register(Task("toy_translation", "seq2seq", (), "English → the rule-based toy language",
                    _toy_loader))
for _name, _spec in HUB_PAIRS.items():
    register(Task(_name, "seq2seq", (), f"{_spec.path} {_spec.config} (hub, full profile)",
                  _hub_pair_loader(_name, _spec), hub=True))


# --- θ_S for translation: a masked-LM on both languages, unaligned -----------------------

def monolingual_corpus(n: int, seed: int = 0) -> list[str]:
    """Return n English sentences and n toy-language sentences, shuffled, none a pair.

    The toy sentences translate a different stream of English sentences, so the corpus
    teaches each language's words and word order but never which word translates which.
    """
    rng = random.Random(f"monolingual/{seed}")
    english = [english_sentence(rng) for _ in range(n)]
    toy = [to_toy(english_sentence(rng)) for _ in range(n)]
    texts = english + toy
    rng.shuffle(texts)
    return texts


def pretrain_bilingual(steps: int = 400, examples: int = 10_000, seed: int = 0,
                       backbone: str = "tiny") -> Path:
    """Train (or load from the cache) a masked-LM θ_S on unaligned English and toy text."""
    from .encode import encode_mlm, mlm_collator
    from .models import MaskedTokensOnly, build_model
    from .pipeline import cache_key, cached_theta, theta_card

    config = TrainConfig(lr=1e-3, batch_size=64, max_steps=steps, warmup_ratio=0.05,
                         scheduler="constant_with_warmup", max_length=32, eval_every=0,
                         progress=False, seed=seed)
    corpus = monolingual_corpus(examples, seed)
    key = cache_key("bilingual", backbone, examples, corpus[:50], config.to_dict())
    target = cache_dir() / "theta_S" / f"{backbone}-bilingual-mlm-{key}"

    def train():
        tokenizer = load_tokenizer(backbone)
        net = build_model(backbone, "mlm", seed=seed)
        data = encode_mlm(corpus, tokenizer, config.max_length)
        history = fit(MaskedTokensOnly(net), data, config=config,
                      collate_fn=mlm_collator(tokenizer, seed=seed))
        return net, tokenizer, theta_card(
            history, config, source="unaligned English + toy-language corpus", model=backbone,
            init="mlm", examples=2 * examples)

    return cached_theta(target, train)


# --- encoding and the model -------------------------------------------------------------

def encode_seq2seq(data: Dataset, tokenizer, max_length: int = 32) -> Dataset:
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


def seq2seq_collator(tokenizer) -> DataCollatorForSeq2Seq:
    """Return a collator that pads inputs with [PAD] and labels with -100 (ignored by the loss)."""
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


def set_special_tokens(model: EncoderDecoderModel, tokenizer) -> EncoderDecoderModel:
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
        raise ValueError(f"unknown warm_start {warm_start!r}; choose one of: "
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
                raise ValueError(f"θ {theta} does not fit the {backbone!r} encoder: {loaded}")
    return set_special_tokens(model, tokenizer)


@torch.inference_mode()
def translate(model: EncoderDecoderModel, tokenizer, sentences: list[str], *, num_beams: int = 4,
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


# --- one run and the comparison ---------------------------------------------------------

def seq2seq_config() -> TrainConfig:
    """Return the default fine-tuning configuration of both arms (tiny BERTs, quick profile)."""
    return TrainConfig(lr=3e-3, max_steps=150, batch_size=32, warmup_ratio=0.1, max_length=32,
                       eval_every=0, progress=False)


def train_translation(theta_S: str | Path | None, train: Dataset, test: Dataset, *,
                      backbone: str = "tiny", seed: int = 0, config: TrainConfig | None = None,
                      num_beams: int = 4, warm_start: str = "both",
                      ) -> tuple[dict, History, EncoderDecoderModel, list[str]]:
    """Fine-tune an encoder–decoder from θ_S (or random); return (metrics, history, θ_T*, outputs).

    `train` and `test` have columns source, target; the outputs are the beam-search
    translations of the test sources, and the metrics their BLEU and chrF (0..100) against
    the references, and the share translated exactly.
    """
    config = (config or seq2seq_config()).replace(seed=seed)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else backbone)
    model = build_seq2seq(theta_S, backbone, seed, warm_start)
    data = encode_seq2seq(train, tokenizer, config.max_length)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED_LOSS)
        history = fit(model, data, config=config, collate_fn=seq2seq_collator(tokenizer))
    hypotheses = translate(model, tokenizer, list(test["source"]), num_beams=num_beams)
    metrics = translation_metrics(hypotheses, list(test["target"]))
    exact = [h == r for h, r in zip(hypotheses, test["target"], strict=True)]
    metrics["exact_match"] = float(np.mean(exact))
    return metrics, history, model, hypotheses


@dataclass
class TranslationComparison:
    """Scratch against transfer on translation pairs: BLEU and chrF per seed, loss curves."""

    target: str
    theta_S: str
    pairs: int
    seeds: int
    arms: dict[str, list[dict]] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    models: dict[str, list] = field(default_factory=dict, repr=False)  # θ_T* per arm and seed

    def mean_std(self, arm: str, metric: str = "bleu") -> tuple[float, float]:
        """Return the mean and standard deviation of a metric over seeds."""
        values = [r[metric] for r in self.arms[arm]]
        return float(np.mean(values)), float(np.std(values))

    def gain(self, metric: str = "bleu") -> float:
        """Return the mean metric of transfer minus that of scratch."""
        return self.mean_std("transfer", metric)[0] - self.mean_std("scratch", metric)[0]

    def table(self) -> str:
        """Return a plain-text table: arm, BLEU and chrF as mean ± std over seeds."""
        lines = [f"{self.target}: {self.pairs} training pairs, {self.seeds} seeds",
                 f"{'arm':<10}{'BLEU':>16}{'chrF':>16}{'exact':>16}"]
        for arm in self.arms:
            cells = [self.mean_std(arm, m) for m in ("bleu", "chrf", "exact_match")]
            lines.append(f"{arm:<10}" + "".join(f"{m:>9.1f} ± {s:<4.1f}" for m, s in cells[:2])
                         + f"{cells[2][0]:>9.2f} ± {cells[2][1]:.2f}")
        lines.append(f"gain (transfer − scratch): {self.gain('bleu'):+.1f} BLEU, "
                     f"{self.gain('chrf'):+.1f} chrF")
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None, axes=None):
        """Plot training loss per step (mean ± std) and BLEU/chrF per arm; save it if `path`."""
        import matplotlib.pyplot as plt

        from .plots import COLORS, plot_mean_std

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        fig = axes[0].figure
        for arm, runs in self.arms.items():
            losses = np.array([r["train_loss"] for r in runs])
            plot_mean_std(axes[0], np.arange(1, losses.shape[1] + 1), losses,
                          f"{arm} (n={len(runs)} seeds)", COLORS.get(arm), marker="")
        axes[0].set(xlabel="training step", ylabel="training loss (cross-entropy, nats/token)",
                    yscale="log", title="Loss while learning the toy language")
        axes[0].legend()
        metrics = ("bleu", "chrf")
        width = 0.38
        for k, arm in enumerate(self.arms):
            stats = [self.mean_std(arm, m) for m in metrics]
            axes[1].bar(np.arange(2) + (k - 0.5) * width, [m for m, _ in stats], width,
                        yerr=[s for _, s in stats], capsize=4, color=COLORS.get(arm), label=arm)
        axes[1].set(xticks=range(2), xticklabels=["BLEU", "chrF"], ylim=(0, 100),
                    ylabel="score on held-out pairs (0–100)",
                    title=f"Beam search on {self.test_size()} test sentences")
        axes[1].legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def test_size(self) -> int:
        """Return how many test sentences each run translated."""
        return int(self.config.get("test_pairs", 0))


def compare_translation(theta_S: str | Path, *, target: str = "toy_translation",
                        pairs: int = 1000, test_pairs: int = 200, seeds: int = 3,
                        backbone: str = "tiny", config: TrainConfig | None = None,
                        num_beams: int = 4) -> TranslationComparison:
    """Train scratch and transfer encoder–decoders on the same pairs, steps and seeds."""
    start = time.perf_counter()
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1 (got {seeds})")
    config = config or seq2seq_config()
    task = TOY if target == "toy_translation" else _get(target)
    test = task.load("test", test_pairs)
    result = TranslationComparison(target, str(theta_S), pairs, seeds,
                                   {"scratch": [], "transfer": []},
                                   {**config.to_dict(), "test_pairs": test_pairs,
                                    "num_beams": num_beams}, models={"scratch": [], "transfer": []})
    for seed in range(seeds):
        train = task.load("train", pairs, seed)
        for arm, theta in (("scratch", None), ("transfer", theta_S)):
            metrics, history, model, outputs = train_translation(
                theta, train, test, backbone=backbone, seed=seed, config=config,
                num_beams=num_beams)
            result.arms[arm].append({"seed": seed, **metrics, "seconds": history.seconds,
                                     "train_loss": [s["loss"] for s in history.steps],
                                     "hypotheses": outputs})
            result.models[arm].append(model)
    result.seconds = time.perf_counter() - start
    return result


# --- a closer look: which words come out right, and can the encoder tell words apart? -----

CONTENT = ADJECTIVES | NOUNS | set(world.PEOPLE) | set(world.PLACES)


def word_recall(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Return the share of the references' content and function words found in the hypotheses.

    Content words translate adjectives, nouns, names and places; function words are the rest
    (verbs, negation, intensifiers, conjunctions, prepositions). Order is ignored.
    """
    content = {lexicon()[w] for w in CONTENT if w in lexicon()}
    found = {"content": [0, 0], "function": [0, 0]}
    for hyp, ref in zip(hypotheses, references, strict=True):
        left = Counter(hyp.split())
        for word in ref.split():
            kind = "content" if word in content else "function"
            found[kind][1] += 1
            if left[word] > 0:
                found[kind][0] += 1
                left[word] -= 1
    return {kind: hit / max(total, 1) for kind, (hit, total) in found.items()}


@torch.inference_mode()
def word_similarity(encoder, tokenizer, words: list[str],
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


def _get(name: str) -> Task:
    """Return a registered seq2seq task."""
    from .tasks import get_task

    task = get_task(name)
    if task.kind != "seq2seq":
        raise ValueError(f"task {name!r} is {task.kind}, not seq2seq; choose toy_translation "
                         f"or one of: {', '.join(HUB_PAIRS)}")
    return task


__all__ = [
    "HUB_PAIRS", "TOY", "TranslationComparison", "build_seq2seq", "compare_translation",
    "encode_seq2seq", "english_sentence", "monolingual_corpus", "pretrain_bilingual",
    "seq2seq_collator", "seq2seq_config", "set_special_tokens", "standardize_pairs", "to_toy",
    "toy_pairs", "train_translation", "translate", "word_recall", "word_similarity",
]
