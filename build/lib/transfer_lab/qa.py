"""Extractive question answering: spans, stride windows, SQuAD EM/F1 (chapter 5, ch-app-qa).

The offline task: a context of fact sentences about the world's people and organisations
("alice lives in paris . acme is based in oslo .") and a question whose answer is a span of it
("where does alice live ?" → "paris"). The source asks about people (plentiful labels); the
target asks about organisations (few labels): other relations, the same kind of reading.
Rows use SQuAD v1.1's columns (id, context, question, answers{text, answer_start}), so the hub
loader only selects columns.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

from . import world
from .config import TrainConfig, cache_dir, profile
from .metrics import squad_metrics
from .models import get_backbone, load_tokenizer, model_config
from .ner import new_head
from .pipeline import Comparison, cache_key, cached_theta, theta_card
from .tasks import SPLIT_SEEDS, Task
from .train import Callback, FitState, fit, loader

COLUMNS = ["id", "context", "question", "answers"]

# relation: (fact template, question template, who it is about, what the answer is)
RELATIONS = {
    "lives": ("{s} lives in {o} .", "where does {s} live ?", "people", "place"),
    "born": ("{s} was born in {o} .", "where was {s} born ?", "people", "place"),
    "works": ("{s} works for {o} .", "who does {s} work for ?", "people", "org"),
    "bought": ("{s} bought a {o} .", "what did {s} buy ?", "people", "product"),
    "based": ("{s} is based in {o} .", "where is {s} based ?", "orgs", "place"),
    "founded": ("{s} was founded by {o} .", "who founded {s} ?", "orgs", "person"),
    "makes": ("{s} makes the {o} .", "what does {s} make ?", "orgs", "product"),
    "sponsors": ("{s} sponsors {o} .", "what does {s} sponsor ?", "orgs", "film"),
}


def _value(kind: str, rng: random.Random) -> str:
    """Return a random object of a kind: a place, organisation, person, product or film."""
    if kind == "product":
        return f"{rng.choice(world.BRANDS)} {rng.choice(world.DOMAINS['products']['items'])}"
    pools = {"place": world.PLACES, "org": world.ORGS, "person": world.PEOPLE,
             "film": world.FILMS}
    return rng.choice(pools[kind])


BY_SUBJECT = {who: [r for r, spec in RELATIONS.items() if spec[2] == who]
              for who in ("people", "orgs")}


def example(about: str, rng: random.Random, facts: tuple[int, int] = (3, 6)) -> dict:
    """Return one SQuAD-style row: a context of facts and a question about `about` (people/orgs).

    The context mixes one fact each about several people and organisations (at least one of
    each), so the answer is found by matching the question's subject in the context.
    """
    n = rng.randint(*facts)
    n_orgs = rng.randint(1, n - 1)
    chosen = [(rng.choice(BY_SUBJECT["people"]), s) for s in rng.sample(world.PEOPLE, n - n_orgs)]
    chosen += [(rng.choice(BY_SUBJECT["orgs"]), s) for s in rng.sample(world.ORGS, n_orgs)]
    rng.shuffle(chosen)
    relation, subject = rng.choice([c for c in chosen if RELATIONS[c[0]][2] == about])
    parts, answer, start = [], "", 0
    for rel, s in chosen:
        obj = _value(RELATIONS[rel][3], rng)
        fact = RELATIONS[rel][0].format(s=s, o=obj)
        if (rel, s) == (relation, subject):
            answer = obj
            start = sum(len(p) + 1 for p in parts) + fact.index(obj, len(s))
        parts.append(fact)
    return {"context": " ".join(parts), "question": RELATIONS[relation][1].format(s=subject),
            "answers": {"text": [answer], "answer_start": [start]}}


def questions(about: str, n: int, seed: int) -> Dataset:
    """Return n seeded SQuAD-style rows whose questions are about `about` ("people" or "orgs")."""
    if about not in ("people", "orgs"):
        raise ValueError(f"unknown question subject {about!r}; choose 'people' or 'orgs'")
    rng = random.Random(f"qa/{about}/{seed}")
    rows = [example(about, rng) for _ in range(n)]
    return Dataset.from_dict({"id": [f"{about}-{seed}-{i}" for i in range(n)],
                              **{c: [r[c] for r in rows] for c in COLUMNS[1:]}})


# --- tasks: two offline, one on the hub ----------------------------------------------------

SQUAD_HUB = "rajpurkar/squad"
SQUAD_SPLITS = {"train": "train", "test": "validation"}


def from_squad(ds: Dataset) -> Dataset:
    """Return SQuAD v1.1 rows with the offline task's columns: id, context, question, answers."""
    missing = set(COLUMNS) - set(ds.column_names)
    if missing:
        raise ValueError(f"a SQuAD split needs the columns {COLUMNS}; {sorted(missing)} missing")
    return ds.select_columns(COLUMNS)


def _load_squad(split: str, n: int, seed: int) -> Dataset:
    """Return n shuffled SQuAD v1.1 questions of a split (needs the hub: Task.load checks)."""
    from datasets import load_dataset

    ds = from_squad(load_dataset(SQUAD_HUB, split=SQUAD_SPLITS[split])).shuffle(seed=seed)
    return ds.select(range(min(n, len(ds))))


def _world_loader(about: str):
    """Return a loader of world questions (train and test draw from different streams)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        return questions(about, n, 1000 * SPLIT_SEEDS[split] + (seed if split == "train" else 0))

    return load


TASKS = {t.name: t for t in (
    Task("qa_people", "qa", (), "questions about people's facts (the source)",
         _world_loader("people")),
    Task("qa_orgs", "qa", (), "questions about organisations' facts (the target)",
         _world_loader("orgs")),
    Task("squad", "qa", (), f"SQuAD v1.1, {SQUAD_HUB} (hub, full profile)", _load_squad,
         hub=True, size=87_599),
)}


def get_task(name: str) -> Task:
    """Return the QA task called `name`."""
    if name not in TASKS:
        raise ValueError(f"unknown QA task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name]


# --- encoder: windows over long contexts, answer spans in tokens ---------------------------

def answer_tokens(offsets, sequence_ids, start_char: int, end_char: int) -> tuple[int, int]:
    """Return the (start, end) token indices of a character span, or (0, 0) ([CLS]) if the
    window does not hold the whole answer."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def _windows(tokenizer, batch, max_length: int, stride: int):
    """Tokenize (question, context) pairs into windows of max_length that overlap by stride."""
    return tokenizer([q.strip() for q in batch["question"]], list(batch["context"]),
                     truncation="only_second", max_length=max_length, stride=stride,
                     return_overflowing_tokens=True, return_offsets_mapping=True)


def qa_collator(tokenizer) -> DataCollatorWithPadding:
    """Return a collator that pads each batch of windows to its longest (dynamic padding)."""
    return DataCollatorWithPadding(tokenizer)


def encode_qa(data: Dataset, tokenizer, max_length: int = 64, stride: int = 16) -> Dataset:
    """Return training windows with start_positions / end_positions of the answer's tokens.

    A context longer than a window becomes several windows (stride tokens shared); a window
    without the whole answer points at [CLS] (0, 0), as in SQuAD fine-tuning.
    """
    def prep(batch):
        enc = _windows(tokenizer, batch, max_length, stride)
        sample, offsets = enc.pop("overflow_to_sample_mapping"), enc.pop("offset_mapping")
        enc["start_positions"], enc["end_positions"] = [], []
        for i, offs in enumerate(offsets):
            answers = batch["answers"][sample[i]]
            start_char = answers["answer_start"][0]
            s, e = answer_tokens(offs, enc.sequence_ids(i), start_char,
                                 start_char + len(answers["text"][0]))
            enc["start_positions"].append(s)
            enc["end_positions"].append(e)
        return enc

    return data.map(prep, batched=True, remove_columns=data.column_names)


@dataclass
class Windows:
    """Evaluation windows: model inputs, the example each came from, and context offsets."""

    inputs: Dataset
    example: list[int]  # index of the example each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # character span per token; None outside context


def encode_qa_eval(data: Dataset, tokenizer, max_length: int = 64, stride: int = 16) -> Windows:
    """Return the evaluation windows of questions and contexts (no answers needed)."""
    enc = _windows(tokenizer, data, max_length, stride)
    offsets = [[tuple(o) if s == 1 else None
                for o, s in zip(offs, enc.sequence_ids(i), strict=True)]
               for i, offs in enumerate(enc["offset_mapping"])]
    inputs = Dataset.from_dict({k: enc[k] for k in tokenizer.model_input_names if k in enc})
    return Windows(inputs, list(enc["overflow_to_sample_mapping"]), offsets)


def decode(start_logits, end_logits, windows: Windows, contexts, max_answer_tokens: int = 30,
           top: int = 20) -> list[str]:
    """Return the best answer text per example: the span of highest start + end logit over all
    of its windows, end ≥ start, at most max_answer_tokens long, inside the context.

    `start_logits` and `end_logits` hold one array of scores per window (its tokens).
    """
    best: dict[int, tuple[float, str]] = {}
    for w, (starts, ends) in enumerate(zip(start_logits, end_logits, strict=True)):
        offs, ex = windows.offsets[w], windows.example[w]
        for s in np.argsort(starts)[::-1][:top]:
            for e in np.argsort(ends)[::-1][:top]:
                if s >= len(offs) or e >= len(offs) or offs[s] is None or offs[e] is None:
                    continue
                if e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = float(starts[s] + ends[e])
                if ex not in best or score > best[ex][0]:
                    best[ex] = (score, contexts[ex][offs[s][0]:offs[e][1]])
    return [best.get(i, (0.0, ""))[1] for i in range(len(contexts))]


@torch.inference_mode()
def predict(model, data: Dataset, tokenizer, max_length: int = 64, stride: int = 16,
            batch_size: int = 128) -> list[str]:
    """Return the predicted answer text of each (question, context) row of `data`."""
    windows = encode_qa_eval(data, tokenizer, max_length, stride)
    was_training = model.training
    model.eval()
    starts, ends = [], []
    for batch in loader(windows.inputs, batch_size, qa_collator(tokenizer)):
        out = model(**{k: v.to(model.device) for k, v in batch.items()})
        for row, n in enumerate(batch["attention_mask"].sum(1).tolist()):  # drop the padding
            starts.append(out.start_logits[row, :n].float().cpu().numpy())
            ends.append(out.end_logits[row, :n].float().cpu().numpy())
    model.train(was_training)
    return decode(starts, ends, windows, list(data["context"]))


def evaluate_qa(model, data: Dataset, tokenizer, max_length: int = 64, stride: int = 16) -> dict:
    """Return SQuAD {"exact_match", "f1"} (0..100) of the model's answers on `data`."""
    predictions = predict(model, data, tokenizer, max_length, stride)
    return squad_metrics(predictions, [a["text"] for a in data["answers"]])


class QAEval(Callback):
    """Evaluate EM/F1 on held-out questions every `every` epochs (fit's metric_fn sees logits)."""

    def __init__(self, data: Dataset, tokenizer, every: int, max_length: int, stride: int):
        self.data, self.tokenizer, self.every = data, tokenizer, every
        self.max_length, self.stride = max_length, stride
        self.curve: list[dict] = []

    def on_epoch_end(self, state: FitState) -> None:
        """Append {"epoch", "exact_match", "f1"} to the curve every `every` epochs."""
        if self.every and (state.epoch + 1) % self.every == 0:
            metrics = evaluate_qa(state.model, self.data, self.tokenizer, self.max_length,
                                  self.stride)
            self.curve.append({"epoch": state.epoch + 1, **metrics})


# --- models, θ_S and the experiment --------------------------------------------------------

def build_qa_model(model: str = "tiny", theta=None, seed: int = 0, pretrained: bool = False):
    """Return a span extractor whose body is θ (a checkpoint), pretrained, or random; new head."""
    torch.manual_seed(seed)
    if theta is None and not pretrained:
        return AutoModelForQuestionAnswering.from_config(model_config(model))
    source = str(theta) if theta is not None else get_backbone(model).path()
    net = AutoModelForQuestionAnswering.from_pretrained(source, ignore_mismatched_sizes=True)
    new_head(net, seed)
    return net


def source_config(model: str = "tiny") -> TrainConfig:
    """Return the configuration of QA source training for a backbone."""
    if get_backbone(model).world_only:
        return TrainConfig(lr=1e-3, batch_size=32, max_steps=300, warmup_ratio=0.06,
                           eval_every=0, max_length=64, progress=False)
    return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1, eval_every=0,
                       max_length=384, progress=False)


def target_config(model: str = "tiny") -> TrainConfig:
    """Return the configuration of target fine-tuning, the same for every arm.

    Windows are `max_length` tokens with a stride of a quarter of it: 64 for the world's short
    contexts, 384 for SQuAD's. 1e-3 is the better of 3e-4 and 1e-3 for both arms of the tiny
    model (at 3e-4 the new head of the transfer arm learns too slowly in 10 epochs).
    """
    if get_backbone(model).world_only:
        return TrainConfig(lr=1e-3, epochs=10, batch_size=16, eval_every=5, max_length=64)
    return TrainConfig(lr=3e-5, epochs=2, batch_size=16, eval_every=1, max_length=384)


def pretrain_source(source: str = "qa_people", model: str = "tiny", *, examples: int = 6_000,
                    config: TrainConfig | None = None, seed: int = 0,
                    out_dir: str | Path | None = None) -> Path:
    """Train θ_S as a span extractor on the source task and return its folder (cached)."""
    task = get_task(source)
    config = config or source_config(model)
    key = cache_key("qa", source, model, examples, config.to_dict(), seed)
    target = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-qa-{key}"

    def train():
        tokenizer = load_tokenizer(model)
        net = build_qa_model(model, seed=seed, pretrained=get_backbone(model).config is None)
        data = encode_qa(task.load("train", examples, seed), tokenizer, config.max_length,
                         config.max_length // 4)
        history = fit(net, data, config=config.replace(seed=seed),
                      collate_fn=qa_collator(tokenizer))
        return net, tokenizer, theta_card(history, config, source=source, model=model,
                                          init="supervised (QA)", examples=examples)

    return cached_theta(target, train, reuse=not out_dir)


def transfer(theta_S, target: str = "qa_orgs", labels: int = 128, seed: int = 0,
             model: str = "tiny", config: TrainConfig | None = None, test=None,
             test_examples: int | None = None):
    """Fine-tune a span extractor from θ_S (or random when None); return (run, model).

    The run is a dict: seed, final exact match and F1 (0..100), and the curve per epoch.
    """
    task = get_task(target)
    config = (config or target_config(model)).replace(seed=seed)
    if labels < 1:
        raise ValueError(f"labels must be at least 1 (got {labels})")
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    stride = config.max_length // 4
    train = encode_qa(task.load("train", labels, seed), tokenizer, config.max_length, stride)
    test = test if test is not None else task.load("test", test_examples)
    net = build_qa_model(model, theta_S, seed)
    curve = QAEval(test, tokenizer, config.eval_every, config.max_length, stride)
    history = fit(net, train, None, config=config, collate_fn=qa_collator(tokenizer),
                  callbacks=[curve])
    if not curve.curve or curve.curve[-1]["epoch"] != history.steps[-1]["epoch"] + 1:
        curve.curve.append({"epoch": history.steps[-1]["epoch"] + 1,
                            **evaluate_qa(net, test, tokenizer, config.max_length, stride)})
    metrics = {k: v for k, v in curve.curve[-1].items() if k != "epoch"}
    return {"seed": seed, **metrics, "seconds": history.seconds, "curve": curve.curve}, net


class QAComparison(Comparison):
    """Scratch against transfer on a QA target: SQuAD exact match and F1 (0..100) per seed."""

    metric = "f1"
    columns = {"exact_match": "exact match", "f1": "F1"}
    to_points = 1.0  # SQuAD scores are already 0..100
    unit = "labelled questions"

    def plot(self, path: str | Path | None = None, ax=None):
        """Plot exact match and F1 per arm: a bar at the mean over seeds, a dot per seed."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
        metrics = {"exact_match": "exact match", "f1": "F1"}
        width = 0.8 / len(self.arms)
        others = iter(["tab:orange", "tab:green", "tab:red", "tab:purple"])
        for i, (arm, runs) in enumerate(self.arms.items()):
            color = {"scratch": "tab:gray", "transfer": "tab:blue"}.get(arm) or next(others)
            label = f"transfer, θ_S: {self.source}" if arm == "transfer" else arm
            for j, metric in enumerate(metrics):
                values = [r[metric] for r in runs]
                x = j + (i - (len(self.arms) - 1) / 2) * width
                ax.bar(x, np.mean(values), width * 0.9, yerr=np.std(values), capsize=3,
                       color=color, label=f"{label} (n={len(runs)} seeds)" if j == 0 else None)
                ax.scatter([x] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(range(len(metrics)), [f"SQuAD {m}" for m in metrics.values()])
        ax.set(xlabel="metric (bar: mean ± std over seeds; dot: one seed)",
               ylabel="test score (0-100)", ylim=(0, 100),
               title=f"QA on {self.target}: {self.labels} labelled questions")
        ax.legend(loc="upper left")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def compare(source: str = "qa_people", target: str = "qa_orgs", model: str = "tiny",
            labels: int = 128, seeds: int = 3, *, config: TrainConfig | None = None,
            theta_S=None, others: dict | None = None, test_examples: int | None = None,
            progress: bool = True) -> QAComparison:
    """Run scratch and transfer (and each θ_S in `others`) on the same data, steps and seeds."""
    start = time.perf_counter()
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1 (got {seeds})")
    task = get_task(target)
    theta_S = theta_S or pretrain_source(source, model)
    thetas = {"scratch": None, "transfer": theta_S, **(others or {})}
    config = (config or target_config(model)).replace(progress=False)
    result = QAComparison(source, target, model, "supervised", labels, seeds,
                          {arm: [] for arm in thetas}, str(theta_S), config.to_dict())
    test = task.load("test", test_examples or profile().test_examples)
    runs = [(seed, arm) for seed in range(seeds) for arm in thetas]
    for seed, arm in tqdm(runs, desc="fine-tune", disable=not progress):
        run, _ = transfer(thetas[arm], target, labels, seed, model, config, test=test)
        result.arms[arm].append(run)
    result.seconds = time.perf_counter() - start
    return result
