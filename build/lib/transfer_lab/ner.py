"""Named entities: IOB2 tags, labels aligned to word pieces, entity F1 (chapter 5, ch-app-ner).

The offline task: sentences written from the world's lexicon (people, places, organisations,
products and films) and tagged PER / LOC / ORG / PROD in IOB2. The source has plentiful labels
(news sentences); the target has few (review sentences: the same names in other contexts).
CoNLL-2003 (full profile) is mapped to the same columns: `tokens` (words) and `tags` (IOB2 names).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from . import world
from .config import TrainConfig, cache_dir, profile
from .metrics import ner_metrics
from .models import get_backbone, load_tokenizer, model_config
from .pipeline import Comparison, cache_key, cached_theta, theta_card
from .plots import plot_mean_std
from .tasks import SPLIT_SEEDS, Task
from .train import fit

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PROD", "I-PROD")
CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
IGNORE = -100  # the label of tokens that the loss and the metric skip

# {PER} {LOC} {ORG} are names; {PROD} is a brand and an item, {FILM} a film title (both PROD).
TEMPLATES = {
    "news": [
        "{PER} spoke in {LOC} on {weekday} .",
        "officials from {ORG} met {PER} in {LOC} .",
        "{ORG} published a report on the {PROD} last {when} .",
        "{PER} joined {ORG} in {LOC} last {when} .",
        "{ORG} will sell the {PROD} in {LOC} from {weekday} .",
        "{PER} , the head of {ORG} , visited {LOC} .",
        "the council of {LOC} invited {PER} and {PER} .",
        "{ORG} and {ORG} signed a treaty in {LOC} .",
        "{ORG} paid for {FILM} , which was shot in {LOC} .",
        "the {aspect} of the {PROD} worried {ORG} on {weekday} .",
    ],
    "reviews": [
        "i bought the {PROD} in {LOC} last {when} .",
        "my {relative} {PER} loves the {PROD} .",
        "we watched {FILM} with {PER} .",
        "{PER} directed {FILM} for {ORG} .",
        "the {PROD} from {ORG} was {adj} .",
        "{FILM} is set in {LOC} and the acting is {adj} .",
        "the {aspect} of my {PROD} is {adj} , says {PER} .",
        "{ORG} shipped my {PROD} to {LOC} .",
    ],
}
FILLERS = {
    "weekday": world.WEEKDAYS, "when": world.WHEN, "relative": world.RELATIVES,
    "aspect": world.DOMAINS["products"]["aspects"], "adj": world.POSITIVE + world.NEGATIVE,
}


def _entity(slot: str, rng: random.Random) -> tuple[str, list[str]]:
    """Return (entity type, its words) for an entity slot such as "{PER}"."""
    kind = slot[1:-1]
    if kind == "PER":
        return kind, [rng.choice(world.PEOPLE)]
    if kind == "LOC":
        return kind, [rng.choice(world.PLACES)]
    if kind == "ORG":
        return kind, [rng.choice(world.ORGS)]
    if kind == "PROD":
        return kind, [rng.choice(world.BRANDS), rng.choice(world.DOMAINS["products"]["items"])]
    if kind == "FILM":
        return "PROD", rng.choice(world.FILMS).split()
    raise ValueError(f"unknown entity slot {slot!r}; use {{PER}}, {{LOC}}, {{ORG}}, {{PROD}} "
                     "or {FILM}")


def sentence(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Return (words, IOB2 tags) of one template filled from the world's lexicon."""
    words, tags = [], []
    for slot in template.split():
        if slot.startswith("{") and slot[1:-1].isupper():
            kind, entity = _entity(slot, rng)
            words += entity
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        else:
            words.append(rng.choice(FILLERS[slot[1:-1]]) if slot.startswith("{") else slot)
            tags.append("O")
    return words, tags


def sentences(domain: str, n: int, seed: int) -> Dataset:
    """Return n seeded tagged sentences of a domain ("news" or "reviews"): tokens, tags."""
    if domain not in TEMPLATES:
        raise ValueError(f"unknown NER domain {domain!r}; choose one of: {', '.join(TEMPLATES)}")
    rng = random.Random(f"ner/{domain}/{seed}")
    rows = [sentence(rng.choice(TEMPLATES[domain]), rng) for _ in range(n)]
    return Dataset.from_dict({"tokens": [w for w, _ in rows], "tags": [t for _, t in rows]})


# --- tasks: two offline, one on the hub ----------------------------------------------------

CONLL_HUB = "eriktks/conll2003"  # the canonical "conll2003" moved here
CONLL_REVISION = "refs/convert/parquet"  # its loading script no longer runs in datasets >= 4
CONLL_SPLITS = {"train": "train", "test": "test"}


def from_conll(ds: Dataset) -> Dataset:
    """Return CoNLL-2003 rows mapped to the offline columns: tokens and tags (IOB2 names)."""
    feature = ds.features["ner_tags"].feature
    names = list(getattr(feature, "names", None) or CONLL_LABELS)
    return ds.map(lambda b: {"tags": [[names[i] for i in row] for row in b["ner_tags"]]},
                  batched=True, remove_columns=[c for c in ds.column_names if c != "tokens"])


def _load_conll(split: str, n: int, seed: int) -> Dataset:
    """Return n shuffled CoNLL-2003 sentences of a split (needs the hub: Task.load checks)."""
    from datasets import load_dataset

    ds = load_dataset(CONLL_HUB, split=CONLL_SPLITS[split], revision=CONLL_REVISION)
    ds = from_conll(ds).shuffle(seed=seed)
    return ds.select(range(min(n, len(ds))))


def _world_loader(domain: str):
    """Return a loader of a world domain's tagged sentences (train and test draw apart)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        return sentences(domain, n, 1000 * SPLIT_SEEDS[split] + (seed if split == "train" else 0))

    return load


TASKS = {t.name: t for t in (
    Task("ner_news", "token", LABELS, "news sentences tagged PER/LOC/ORG/PROD (the source)",
         _world_loader("news")),
    Task("ner_reviews", "token", LABELS, "review sentences tagged PER/LOC/ORG/PROD (the target)",
         _world_loader("reviews")),
    Task("conll2003", "token", CONLL_LABELS, f"CoNLL-2003 English, {CONLL_HUB} (hub, full profile)",
         _load_conll, hub=True, size=14_041),
)}


def get_task(name: str) -> Task:
    """Return the NER task called `name`."""
    if name not in TASKS:
        raise ValueError(f"unknown NER task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name]


# --- encoder and metric glue ---------------------------------------------------------------

def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Return one label per token: its word's label on the first piece, IGNORE on the others.

    Special tokens ([CLS], [SEP]; word id None) and the later pieces of a split word get
    IGNORE (-100), so the loss and the metric count each word exactly once.
    """
    out, previous = [], None
    for wid in word_ids:
        out.append(IGNORE if wid is None or wid == previous else word_labels[wid])
        previous = wid
    return out


def encode_ner(data: Dataset, tokenizer, labels=LABELS, max_length: int = 64) -> Dataset:
    """Return tagged sentences tokenized into word pieces with aligned labels, unpadded."""
    label2id = {name: i for i, name in enumerate(labels)}
    unknown = {t for tags in data["tags"] for t in tags} - set(label2id)
    if unknown:
        raise ValueError(f"tags {sorted(unknown)} are not among the labels {list(labels)}; "
                         "pass the task's labels (e.g. labels=get_task(name).labels)")

    def tok(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True,
                        max_length=max_length)
        enc["labels"] = [align_labels(enc.word_ids(i), [label2id[t] for t in tags])
                         for i, tags in enumerate(batch["tags"])]
        return enc

    return data.map(tok, batched=True, remove_columns=data.column_names)


def ner_collator(tokenizer) -> DataCollatorForTokenClassification:
    """Return a collator that pads input ids and labels (with IGNORE) to the longest sentence."""
    return DataCollatorForTokenClassification(tokenizer)


def tags_from_logits(logits: torch.Tensor, labels: torch.Tensor, names=LABELS):
    """Return (gold, predicted) IOB2 tags per sentence, one per word (IGNORE tokens skipped)."""
    gold, pred = [], []
    for p_row, l_row in zip(logits.argmax(-1).tolist(), labels.tolist(), strict=True):
        kept = [(names[g], names[p]) for p, g in zip(p_row, l_row, strict=True) if g != IGNORE]
        gold.append([g for g, _ in kept])
        pred.append([p for _, p in kept])
    return gold, pred


def ner_metric(names=LABELS):
    """Return a metric_fn for `fit`/`evaluate`: entity-level F1, precision, recall (seqeval)."""

    def metric(logits: torch.Tensor, labels: torch.Tensor) -> dict:
        return ner_metrics(*tags_from_logits(logits, labels, names))

    return metric


@torch.inference_mode()
def tag(model, tokenizer, words: list[str]) -> list[tuple[str, str, str]]:
    """Return (word, its word pieces, predicted tag) for each word of one sentence."""
    model.eval()
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    enc = enc.to(model.device)
    pred = model(**enc).logits[0].argmax(-1).tolist()
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    word_ids = enc.word_ids(0)
    out = []
    for i, word in enumerate(words):
        idx = [j for j, w in enumerate(word_ids) if w == i]
        out.append((word, " ".join(pieces[j] for j in idx), model.config.id2label[pred[idx[0]]]))
    return out


# --- models, θ_S and the experiment --------------------------------------------------------

def build_ner_model(model: str = "tiny", theta=None, labels=LABELS, seed: int = 0,
                    pretrained: bool = False):
    """Return a token classifier whose body is θ (a checkpoint), pretrained, or random; new head."""
    kw = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
              label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(seed)
    if theta is None and not pretrained:
        return AutoModelForTokenClassification.from_config(model_config(model, **kw))
    source = str(theta) if theta is not None else get_backbone(model).path()
    net = AutoModelForTokenClassification.from_pretrained(source, ignore_mismatched_sizes=True,
                                                          **kw)
    new_head(net, seed)
    return net


def new_head(net, seed: int = 0) -> None:
    """Re-initialise every linear layer outside the body (the head) as BERT does, seeded.

    `models.reset_head` goes through transformers' init functions, which (transformers 5) skip
    weights that `from_pretrained` loaded; a head of the same shape as θ_S's would survive.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, torch.nn.Linear) and not name.startswith(net.base_model_prefix):
                module.weight.normal_(0.0, net.config.initializer_range, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()


def source_config(model: str = "tiny") -> TrainConfig:
    """Return the configuration of NER source training for a backbone."""
    if get_backbone(model).world_only:
        return TrainConfig(lr=5e-4, batch_size=32, max_steps=200, warmup_ratio=0.06,
                           eval_every=0, progress=False)
    return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1, eval_every=0,
                       max_length=128, progress=False)


def target_config(model: str = "tiny") -> TrainConfig:
    """Return the configuration of target fine-tuning, the same for every arm.

    For the tiny model the learning rate is scratch's best of 3e-4 and 1e-3 (at 3e-4, 20 epochs
    leave scratch under-trained: F1 0.58 instead of 0.90), so the gain is not a slow baseline's.
    """
    if get_backbone(model).world_only:
        return TrainConfig(lr=1e-3, epochs=20, batch_size=16, eval_every=5)
    return TrainConfig(lr=5e-5, epochs=3, batch_size=16, eval_every=1, max_length=128)


def pretrain_source(source: str = "ner_news", model: str = "tiny", *, examples: int = 3_000,
                    config: TrainConfig | None = None, seed: int = 0,
                    out_dir: str | Path | None = None) -> Path:
    """Train θ_S as a tagger on the source task and return its folder (cached, like tl's)."""
    task = get_task(source)
    config = config or source_config(model)
    key = cache_key("ner", source, model, examples, config.to_dict(), seed)
    target = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-ner-{key}"

    def train():
        tokenizer = load_tokenizer(model)
        net = build_ner_model(model, labels=task.labels, seed=seed,
                              pretrained=get_backbone(model).config is None)
        data = encode_ner(task.load("train", examples, seed), tokenizer, task.labels,
                          config.max_length)
        history = fit(net, data, config=config.replace(seed=seed),
                      collate_fn=ner_collator(tokenizer))
        return net, tokenizer, theta_card(history, config, source=source, model=model,
                                          init="supervised (NER)", examples=examples)

    return cached_theta(target, train, reuse=not out_dir)


def target_data(target: str, labels: int, seed: int, tokenizer, max_length: int = 64,
                test_examples: int | None = None):
    """Return (train, test) of a NER target encoded: `labels` seeded training sentences."""
    task = get_task(target)
    if labels < 1:
        raise ValueError(f"labels must be at least 1 (got {labels})")
    train = encode_ner(task.load("train", labels, seed), tokenizer, task.labels, max_length)
    test = encode_ner(task.load("test", test_examples), tokenizer, task.labels, max_length)
    return train, test


def transfer(theta_S, target: str = "ner_reviews", labels: int = 64, seed: int = 0,
             model: str = "tiny", config: TrainConfig | None = None, data=None):
    """Fine-tune a tagger from θ_S (or from random when None) on the target; return (run, model).

    The run is a dict: seed, final entity F1 / precision / recall, and the curve per epoch.
    """
    task = get_task(target)
    config = (config or target_config(model)).replace(seed=seed)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    train, test = data or target_data(target, labels, seed, tokenizer, config.max_length)
    net = build_ner_model(model, theta_S, task.labels, seed)
    history = fit(net, train, test, config=config, collate_fn=ner_collator(tokenizer),
                  metric_fn=ner_metric(task.labels))
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    curve = [{"epoch": e["epoch"], "f1": e["f1"], "loss": e["loss"]} for e in history.evals]
    return {"seed": seed, **metrics, "seconds": history.seconds, "curve": curve}, net


class NERComparison(Comparison):
    """Scratch against transfer (and other θ_S) on a NER target: entity F1 per seed and arm."""

    metric = "f1"
    columns = {"f1": "entity F1", "precision": "precision", "recall": "recall"}
    unit = "labelled sentences"

    def plot(self, path: str | Path | None = None, ax=None):
        """Plot test entity F1 against epoch for each arm (mean ± std over seeds)."""
        return plot_arms(self, "f1", "test entity F1 (seqeval)", (0, 1.02),
                         f"NER on {self.target}: {self.labels} labelled sentences", path, ax)


def plot_arms(result: Comparison, metric: str, ylabel: str, ylim, title: str, path=None, ax=None):
    """Plot a metric against epoch for each arm of a comparison, mean ± std over seeds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    others = iter(["tab:orange", "tab:green", "tab:red", "tab:purple"])
    for arm, runs in result.arms.items():
        color = {"scratch": "tab:gray", "transfer": "tab:blue"}.get(arm) or next(others)
        label = f"transfer, θ_S: {result.source}" if arm == "transfer" else arm
        epochs = [p["epoch"] for p in runs[0]["curve"]]
        values = [[p[metric] for p in r["curve"]] for r in runs]
        plot_mean_std(ax, epochs, values, f"{label} (n={len(runs)} seeds)", color)
    ax.set(xlabel="epoch of target fine-tuning", ylabel=ylabel, ylim=ylim, title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def compare(source: str = "ner_news", target: str = "ner_reviews", model: str = "tiny",
            labels: int = 64, seeds: int = 3, *, config: TrainConfig | None = None,
            theta_S=None, others: dict | None = None, test_examples: int | None = None,
            progress: bool = True) -> NERComparison:
    """Run scratch and transfer (and each θ_S in `others`) on the same data, steps and seeds."""
    start = time.perf_counter()
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1 (got {seeds})")
    get_task(target)
    theta_S = theta_S or pretrain_source(source, model)
    thetas = {"scratch": None, "transfer": theta_S, **(others or {})}
    config = (config or target_config(model)).replace(progress=False)
    result = NERComparison(source, target, model, "supervised", labels, seeds,
                           {arm: [] for arm in thetas}, str(theta_S), config.to_dict())
    tokenizer = load_tokenizer(str(theta_S))
    test_examples = test_examples or profile().test_examples
    runs = [(seed, arm) for seed in range(seeds) for arm in thetas]
    data = {}
    for seed, arm in tqdm(runs, desc="fine-tune", disable=not progress):
        if seed not in data:  # every arm of a seed sees the same sentences
            data = {seed: target_data(target, labels, seed, tokenizer, config.max_length,
                                      test_examples)}
        run, _ = transfer(thetas[arm], target, labels, seed, model, config, data=data[seed])
        result.arms[arm].append(run)
    result.seconds = time.perf_counter() - start
    return result
