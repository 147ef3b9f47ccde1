"""Tasks: a name, a family, label names and a loader; the one registry of tasks (ch. 4, 5, 7).

Every family's tasks live here: the synthetic world's (offline) and the hub's (full profile,
real data sets mapped to the same columns). A user's files (`userdata.task_from_file`) give
Task objects that are passed as they are, or named inside `with using(task):`. The
columns a task's rows have are its family's: `text`, `label` (classification); `tokens`, `tags`
(token classification); SQuAD's `id`, `context`, `question`, `answers` (extractive QA);
`source`, `target` (seq2seq). Masked-LM θ_S read unlabeled text from `CORPORA`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType

from datasets import Dataset

from transfer_lab import validate
from transfer_lab.config import offline, profile
from transfer_lab.data import ner, qa, sentences, translation, world

SPLIT_SEEDS = {"train": 1, "test": 2}  # train and test texts come from different streams
Loader = Callable[[str, int, int], Dataset]  # (split, n, seed) → n rows


@dataclass(frozen=True)
class Task:
    """A task: its family (what kind of head and metric), its class names, how to load it.

    `classes` names what a label can be (the classes, or the tags of NER); a label budget, the
    number of labelled examples a run trains on, is `labels` elsewhere (`compare(labels=64)`)."""

    name: str
    family: str  # a key of `families.FAMILIES`
    classes: tuple[str, ...]
    description: str
    loader: Loader = field(repr=False)
    hub: bool = False
    size: int = 1_000_000  # how many training examples exist

    @property
    def num_classes(self) -> int:
        """Return the number of classes (or tags)."""
        return len(self.classes)

    def load(self, split: str = "train", n: int | None = None, seed: int = 0) -> Dataset:
        """Return `n` examples of a split as a `datasets.Dataset` (its family's columns).

        The rows are checked: an empty split, a text that is not a string or is empty, or a
        label that is not a class index of this task raises one InputError naming the row.
        """
        validate.choice("split", split, SPLIT_SEEDS)
        if n is None:
            n = self.size if split == "train" else profile().test_examples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise validate.InputError(f"asked for {n!r} examples of {self.name!r}; ask for a "
                                      "whole number, at least 1")
        if split == "train" and n > self.size:
            raise validate.InputError(f"task {self.name!r} has {self.size} training examples; "
                                      f"ask for at most {self.size}")
        self.require_data()
        data = self.loader(split, n, seed)
        where = f"task {self.name!r} ({split})"
        if self.family == "classification":
            validate.classification_data(data, self.classes, where=where)
        else:
            validate.not_empty(data, where)
        return data

    def require_data(self) -> None:
        """Raise one clear error when the task's data is on the hub and the hub is offline."""
        if self.hub and offline():
            fix = ("set TRANSFER_LAB_PROFILE=full on a machine with a network" if profile().offline
                   else "unset HF_HUB_OFFLINE (and connect to a network)")
            raise validate.InputError(f"task {self.name!r} needs the Hugging Face hub, which is "
                                      "offline here; use the quick profile's tasks (transfer-lab "
                                      f"tasks), or {fix}")


TASKS: dict[str, Task] = {}
# tasks and corpora that `using` makes known by name inside a `with` block (a user's files)
_LOCAL: ContextVar[Mapping] = ContextVar("transfer_lab_local",
                                      default=MappingProxyType({}))


def register(task: Task) -> Task:
    """Add a task to the registry and return it."""
    TASKS[task.name] = task
    return task


def get_task(task: str | Task) -> Task:
    """Return the task called `task` (registered, or known through `using`), or `task` itself."""
    if isinstance(task, Task):
        return task
    known = {**TASKS, **{n: t for n, t in _LOCAL.get().items() if isinstance(t, Task)}}
    return known[validate.choice("task", task, known)]


@contextmanager
def using(*items: Task | Corpus) -> Iterator[None]:
    """Make tasks and corpora (e.g. from `userdata.task_from_file`) known by name inside a
    `with` block, for `get_task` and `get_corpus`; the registries themselves are unchanged.

        with using(task_from_file("train.csv")):
            compare(target="train", ...)
    """
    token = _LOCAL.set({**_LOCAL.get(), **{item.name: item for item in items}})
    try:
        yield
    finally:
        _LOCAL.reset(token)


def world_loader(make: Callable[[int, int], Dataset]) -> Loader:
    """Return a loader that draws rows from a seeded world generator (train, test apart)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        return make(n, 1000 * SPLIT_SEEDS[split] + (seed if split == "train" else 0))

    return load


@dataclass(frozen=True)
class HubSpec:
    """Where a hub data set lives, its splits, and how its rows map to the family's columns:
    by renaming `columns` ({hub column: ours}), or by a `standardize` function."""

    path: str
    config: str | None
    splits: dict[str, str]  # our split → the hub's ("train[:95%]" slices allowed)
    columns: dict[str, str] = field(default_factory=dict)
    standardize: Callable[[Dataset], Dataset] | None = field(default=None, repr=False)
    revision: str | None = None


def hub_loader(spec: HubSpec) -> Loader:
    """Return a loader for a hub data set (Task.load says when the hub is offline)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        from datasets import load_dataset

        ds = load_dataset(spec.path, spec.config, split=spec.splits[split],
                          revision=spec.revision)
        ds = spec.standardize(ds) if spec.standardize else keep_columns(ds, spec.columns)
        ds = ds.shuffle(seed=seed)
        return ds.select(range(min(n, len(ds))))

    return load


def sentiment_rows(examples: list[world.Example]) -> Dataset:
    """Return world examples as classification rows: text, label."""
    return Dataset.from_dict({"text": [e.text for e in examples],
                              "label": [e.label for e in examples]})


def keep_columns(ds: Dataset, columns: dict[str, str]) -> Dataset:
    """Return a hub split with its `columns` renamed ({hub name: ours}) and the others dropped."""
    ds = ds.rename_columns({old: new for old, new in columns.items() if old != new})
    return ds.select_columns(list(columns.values()))


# --- classification ------------------------------------------------------------------------

SENTIMENT = ("negative", "positive")
for _name, _make, _desc in [
    ("product_sentiment", lambda n, s: world.sentiment("products", n, s),
     "product reviews, positive or negative (a source)"),
    ("film_sentiment", lambda n, s: world.sentiment("films", n, s),
     "film reviews, positive or negative (the target)"),
    ("restaurant_sentiment", lambda n, s: world.sentiment("restaurants", n, s),
     "restaurant reviews with their own adjectives"),
    ("film_sentiment_plain", lambda n, s: world.sentiment("films", n, s, negation=0, contrast=0),
     "film reviews without negation or contrast"),
    ("product_sentiment_shuffled", lambda n, s: world.sentiment("products", n, s, noise=0.5),
     "product reviews with random labels (a useless source)"),
]:
    register(Task(_name, "classification", SENTIMENT, _desc,
                  world_loader(lambda n, s, make=_make: sentiment_rows(make(n, s)))))
register(Task("topic", "classification", tuple(world.DOMAINS), "which domain a text is about",
              world_loader(lambda n, s: sentiment_rows(world.topic(n, s)))))
register(Task("contrast", "classification", ("no_contrast", "contrast"),
              "does a review contain a contrast? (an unrelated source)",
              world_loader(lambda n, s: sentiment_rows(world.contrast(n, s)))))
HUB = {  # the full profile's sentiment sets, mapped to text and label
    "sst2": HubSpec("nyu-mll/glue", "sst2", {"train": "train", "test": "validation"},
                    {"sentence": "text", "label": "label"}),
    "imdb": HubSpec("stanfordnlp/imdb", None, {"train": "train", "test": "test"},
                    {"text": "text", "label": "label"}),
    "yelp_polarity": HubSpec("fancyzhx/yelp_polarity", None, {"train": "train", "test": "test"},
                             {"text": "text", "label": "label"}),
}
for _name, _spec in HUB.items():
    register(Task(_name, "classification", SENTIMENT, f"{_spec.path}",
                  hub_loader(_spec), hub=True))

# --- token classification (NER) ------------------------------------------------------------

register(Task("ner_news", "token_classification", ner.LABELS,
              "news sentences tagged PER/LOC/ORG/PROD (the NER source)",
              world_loader(lambda n, s: ner.sentences("news", n, s))))
register(Task("ner_reviews", "token_classification", ner.LABELS,
              "review sentences tagged PER/LOC/ORG/PROD (the NER target)",
              world_loader(lambda n, s: ner.sentences("reviews", n, s))))
register(Task("conll2003", "token_classification", ner.CONLL_LABELS,
              f"CoNLL-2003 English, {ner.CONLL_HUB}",
              hub_loader(HubSpec(ner.CONLL_HUB, None, {"train": "train", "test": "test"},
                                 standardize=ner.from_conll, revision=ner.CONLL_REVISION)),
              hub=True, size=14_041))

# --- extractive QA -------------------------------------------------------------------------

register(Task("qa_people", "extractive_qa", (), "questions about people's facts (the QA source)",
              world_loader(lambda n, s: qa.questions("people", n, s))))
register(Task("qa_orgs", "extractive_qa", (),
              "questions about organisations' facts (the QA target)",
              world_loader(lambda n, s: qa.questions("orgs", n, s))))
register(Task("squad", "extractive_qa", (), f"SQuAD v1.1, {qa.SQUAD_HUB}",
              hub_loader(HubSpec(qa.SQUAD_HUB, None, {"train": "train", "test": "validation"},
                                 standardize=qa.from_squad)), hub=True, size=87_599))

# --- seq2seq (translation) -----------------------------------------------------------------

register(Task("toy_translation", "seq2seq", (), "English → the rule-based toy language",
              world_loader(translation.toy_pairs)))
for _name, _pair in translation.HUB_PAIRS.items():
    register(Task(_name, "seq2seq", (), f"{_pair.path} {_pair.config}",
                  hub_loader(HubSpec(_pair.path, _pair.config, _pair.splits, standardize=partial(
                      translation.standardize_pairs, spec=_pair))),
                  hub=True))


# --- unlabeled corpora (masked-LM θ_S) -----------------------------------------------------

@dataclass(frozen=True)
class Corpus:
    """Unlabeled text for a masked-LM θ_S, and the length of its default recipe."""

    name: str
    description: str
    make: Callable[[int, int], list[str]] = field(repr=False)  # (n, seed) → texts
    examples: int | None = None  # None: the profile's source_examples
    steps: int | None = None  # None: the profile's mlm_steps
    warmup_ratio: float = 0.02


CORPORA = {c.name: c for c in (
    Corpus("world", "the world's reviews with polarity cues in context", world.mlm_corpus),
    Corpus("film_reviews", "unlabeled film-domain text: film words beside the core ones "
           "(the target's domain, for the dapt arm)", world.film_corpus),
    Corpus("bilingual", "unaligned English and toy-language sentences (translation's θ_S)",
           translation.monolingual_corpus, examples=10_000, steps=400, warmup_ratio=0.05),
)}


def register_corpus(corpus: Corpus) -> Corpus:
    """Add an unlabeled corpus to the registry and return it."""
    CORPORA[corpus.name] = corpus
    return corpus


def get_corpus(corpus: str | Corpus) -> Corpus:
    """Return the unlabeled corpus called `corpus` (registered, or known through `using`), or
    `corpus` itself."""
    if isinstance(corpus, Corpus):
        return corpus
    known = {**CORPORA, **{n: c for n, c in _LOCAL.get().items() if isinstance(c, Corpus)}}
    return known[validate.choice("corpus", corpus, known)]


# --- real sentences (UCI Sentiment Labelled Sentences, CC BY 4.0, shipped unchanged) --------

for _domain, _site in [("product", "amazon.com cell phone"), ("film", "imdb.com film"),
                       ("restaurant", "yelp.com restaurant")]:
    register(Task(f"{_domain}_sentences", "classification", SENTIMENT,
                  f"real {_site} review sentences, positive or negative (UCI Sentiment "
                  "Labelled Sentences, Kotzias et al. 2015, CC BY 4.0)",
                  sentences.loader(_domain), size=sentences.POOL_SIZE))
    register_corpus(Corpus(f"{_domain}_sentences_text",
                           f"the {sentences.POOL_SIZE} training-pool sentences of "
                           f"{_domain}_sentences, unlabeled (never its test split; for dapt)",
                           sentences.corpus(_domain), examples=sentences.POOL_SIZE))
