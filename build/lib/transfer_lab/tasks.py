"""Tasks: a name, a kind, label names and a loader; the registry of tasks (chapters 4, 5 and 7).

Offline tasks come from the synthetic world; hub tasks (full profile) load real data sets with
`datasets.load_dataset` and map them to the same columns (`text`, `label`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset

from . import validate, world
from .config import profile

SPLIT_SEEDS = {"train": 1, "test": 2}  # train and test texts come from different streams


@dataclass(frozen=True)
class Task:
    """A task: what kind of head it needs, its label names, and how to load it."""

    name: str
    kind: str  # "classification" (other kinds: token, qa, seq2seq — chapter 5)
    labels: tuple[str, ...]
    description: str
    loader: Callable[[str, int, int], Dataset] = field(repr=False)
    hub: bool = False
    size: int = 1_000_000  # how many training examples exist

    @property
    def num_labels(self) -> int:
        """Return the number of classes."""
        return len(self.labels)

    def load(self, split: str = "train", n: int | None = None, seed: int = 0) -> Dataset:
        """Return `n` examples of a split as a `datasets.Dataset` (columns: text, label).

        The rows are checked: an empty split, a text that is not a string or is empty, or a
        label that is not a class index of this task raises one ValueError naming the row.
        """
        validate.choice("split", split, SPLIT_SEEDS)
        if n is None:
            n = self.size if split == "train" else profile().test_examples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"asked for {n!r} examples of {self.name!r}; ask for a whole "
                             "number, at least 1")
        if split == "train" and n > self.size:
            raise ValueError(f"task {self.name!r} has {self.size} training examples; "
                             f"ask for at most {self.size}")
        self.require_data()
        data = self.loader(split, n, seed)
        where = f"task {self.name!r} ({split})"
        if self.kind == "classification":
            validate.classification_data(data, self.labels, where=where)
        else:
            validate.not_empty(data, where)
        return data

    def require_data(self) -> None:
        """Raise one clear error when the task's data is on the hub and the hub is offline."""
        if self.hub and offline():
            fix = ("set TRANSFER_LAB_PROFILE=full on a machine with a network" if profile().offline
                   else "unset HF_HUB_OFFLINE (and connect to a network)")
            raise RuntimeError(f"task {self.name!r} needs the Hugging Face hub, which is offline "
                               f"here; use the quick profile's tasks (transfer-lab tasks), or "
                               f"{fix}")


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task to the registry and return it."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Return the registered task called `name`."""
    return TASKS[validate.choice("task", name, TASKS)]


def _world_loader(make: Callable[[int, int], list[world.Example]]):
    """Return a loader that draws examples from a seeded world generator."""

    def load(split: str, n: int, seed: int) -> Dataset:
        examples = make(n, 1000 * SPLIT_SEEDS[split] + (seed if split == "train" else 0))
        return Dataset.from_dict({"text": [e.text for e in examples],
                                  "label": [e.label for e in examples]})

    return load


SENTIMENT = ("negative", "positive")
for _name, _domain, _desc in [
    ("product_sentiment", "products", "product reviews, positive or negative (a source)"),
    ("film_sentiment", "films", "film reviews, positive or negative (the target)"),
    ("restaurant_sentiment", "restaurants", "restaurant reviews with their own adjectives"),
]:
    register(Task(_name, "classification", SENTIMENT, _desc,
                  _world_loader(lambda n, s, d=_domain: world.sentiment(d, n, s))))
register(Task("film_sentiment_plain", "classification", SENTIMENT,
              "film reviews without negation or contrast",
              _world_loader(lambda n, s: world.sentiment("films", n, s, negation=0, contrast=0))))
register(Task("product_sentiment_shuffled", "classification", SENTIMENT,
              "product reviews with random labels (a useless source)",
              _world_loader(lambda n, s: world.sentiment("products", n, s, noise=0.5))))
register(Task("topic", "classification", tuple(world.DOMAINS), "which domain a text is about",
              _world_loader(world.topic)))
register(Task("contrast", "classification", ("no_contrast", "contrast"),
              "does a review contain a contrast? (an unrelated source)",
              _world_loader(world.contrast)))


# --- hub tasks (full profile) -------------------------------------------------------------

@dataclass(frozen=True)
class HubSpec:
    """Where a hub data set lives and which of its columns are text and label."""

    path: str
    config: str | None
    text: str
    label: str
    splits: dict[str, str]


HUB = {
    "sst2": HubSpec("nyu-mll/glue", "sst2", "sentence", "label",
                    {"train": "train", "test": "validation"}),
    "imdb": HubSpec("stanfordnlp/imdb", None, "text", "label", {"train": "train", "test": "test"}),
    "yelp_polarity": HubSpec("fancyzhx/yelp_polarity", None, "text", "label",
                             {"train": "train", "test": "test"}),
}


def offline() -> bool:
    """Return True when the hub must not be reached (quick profile or HF_HUB_OFFLINE=1)."""
    return profile().offline or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")


def standardize(ds: Dataset, spec: HubSpec) -> Dataset:
    """Return a hub split mapped to the offline tasks' columns (text, label)."""
    names = {spec.text: "text", spec.label: "label"}
    ds = ds.rename_columns({old: new for old, new in names.items() if old != new})
    return ds.select_columns(["text", "label"])


def _hub_loader(name: str, spec: HubSpec):
    """Return a loader for a hub task (Task.load says when the hub is offline)."""

    def load(split: str, n: int, seed: int) -> Dataset:
        from datasets import load_dataset

        ds = load_dataset(spec.path, spec.config, split=spec.splits[split])
        ds = standardize(ds, spec).shuffle(seed=seed)
        return ds.select(range(min(n, len(ds))))

    return load


for _name, _spec in HUB.items():
    register(Task(_name, "classification", SENTIMENT, f"{_spec.path} (hub, full profile)",
                  _hub_loader(_name, _spec), hub=True))
