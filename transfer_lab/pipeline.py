"""The pipeline as the math says it: D_S → θ_S → save → load → θ_T(0) → fine-tune → θ_T* (ch. 4).

Written once for every task family: `pretrain_source` trains θ_S and saves it with
`save_pretrained`; `transfer` starts a target model from θ_S (or from random, θ_S=None) and
fine-tunes it; `compare` runs the arms on the same target data, label budget, steps and seeds.
What differs between families (head, encoding, evaluation, recipes) comes from the target
task's family (`families`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from transfer_lab import validate
from transfer_lab.cache import cache_key, cached_theta, save_theta, theta_card
from transfer_lab.config import INITS, TrainConfig, cache_dir, profile
from transfer_lab.data.tasks import Corpus, Task, get_corpus, get_task
from transfer_lab.families import TaskFamily, family_for
from transfer_lab.models import (
    MaskedTokensOnly,
    build_model,
    count_parameters,
    get_backbone,
    load_tokenizer,
)
from transfer_lab.models.mlm import encode_mlm, mlm_collator
from transfer_lab.results import Comparison, Run
from transfer_lab.training.checkpoint import write_atomically
from transfer_lab.training.loop import Callback, fit
from transfer_lab.training.strategies import prepare, trained_parameters
from transfer_lab.validate import InputError, OutputExists


@dataclass(frozen=True)
class Selection:
    """The one tuning procedure of every fine-tuned arm: each learning rate of `lrs` (default:
    the recipe's rate ÷ 3, × 1 and × 3) trains on the labels less a `validation` share,
    evaluated each epoch on that share; the best (rate, epoch) then trains on all the labels.
    Each run takes at least `min_steps` steps, so that a pretrained body is not under-trained
    at a small budget. The test split is never seen."""

    lrs: tuple[float, ...] | None = None
    validation: float = 0.25
    min_steps: int = 50
ARMS = ("scratch", "transfer")
SEEDS_TINY, SEEDS_PRETRAINED = 5, 3  # default seeds per arm (`default_seeds`)
SOURCE_CHECKPOINT_EVERY = 100  # steps between checkpoints of θ_S's training


def family_of(task: str | Task, model: str = "tiny", options: dict | None = None) -> TaskFamily:
    """Return the family that trains a registered task on a backbone (encoder or decoder LLM),
    with some of its `options` changed (e.g. {"shots": 8} for a decoder LLM)."""
    family = family_for(get_task(task).family, get_backbone(model).decoder)
    return family.with_options(**options) if options else family


def default_seeds(model: str) -> int:
    """Return the seeds a comparison runs by default: 5 on a tiny world model, 3 on a
    pretrained backbone (MiniLM, BERT, SmolLM2), whose runs cost more."""
    return SEEDS_TINY if get_backbone(model).world_only else SEEDS_PRETRAINED


def source_config(model: str, init: str = "supervised",
                  source: str | Task | None = None) -> TrainConfig:
    """Return the default recipe of θ_S's training for a backbone, objective and source."""
    if init == "mlm":
        return mlm_config(get_corpus(source or "world"), model)
    return family_of(source or "product_sentiment", model).source_config(model)


def target_config(model: str, target: str | Task = "film_sentiment") -> TrainConfig:
    """Return the default recipe of target fine-tuning (every arm) for a backbone and target."""
    return family_of(target, model).target_config(model)


def mlm_config(corpus: Corpus, model: str = "tiny") -> TrainConfig:
    """Return the recipe of masked-LM training on a corpus: from random, many steps at a high
    constant rate; continued from a pretrained body (domain-adaptive), few at a low one."""
    if get_backbone(model).world_only:
        return TrainConfig(lr=1e-3, batch_size=64, max_steps=corpus.steps or profile().mlm_steps,
                           warmup_ratio=corpus.warmup_ratio, scheduler="constant_with_warmup",
                           max_length=32, eval_every=0)
    return TrainConfig(lr=5e-5, batch_size=32, max_steps=corpus.steps or profile().pretrained_steps,
                       warmup_ratio=0.1, max_length=64, eval_every=0)


def pretrain_source(
    source: str | Task | None = None,
    model: str = "tiny",
    init: str = "supervised",
    *,
    examples: int | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    theta: str | Path | None = None,
) -> Path:
    """Train θ_S on the source and return the folder `save_pretrained` wrote (model + tokenizer).

    `init="supervised"` trains the source task's model (its family's head) on its labels
    (default source: product_sentiment); `init="mlm"` trains a masked-language model on an
    unlabeled corpus of `tasks.CORPORA` (default: "world"); `init="pretrained"` uses the
    backbone's own pretrained weights as θ_S. Masked-LM training starts from the backbone's
    pretrained weights where it has them (MiniLM: domain-adaptive pretraining, the `dapt` arm),
    else from random. `theta` (a θ folder, e.g. a masked-LM θ) is where supervised training
    starts instead of the backbone: the `dapt` arm's domain-adapted body. Without `out_dir`, θ_S
    is cached (keyed by every argument) and reused: a later chapter loads it instead of training
    again. Training writes checkpoints beside the folder, so a run cut short continues where it
    stopped.
    """
    validate.choice("init", init, INITS)
    backbone = get_backbone(model)
    if theta is not None and init != "supervised":
        raise InputError(f"theta= sets where supervised source training begins; "
                                  f"init={init!r} "
                         "trains from the backbone (use init='supervised')")
    if init == "pretrained":
        if backbone.config is not None:
            raise InputError(f"model {model!r} has no pretrained weights; use init='supervised' "
                             "or 'mlm', or a pretrained model such as 'minilm'")
        return Path(backbone.path())
    if init == "mlm":
        if backbone.decoder:
            raise InputError(f"model {model!r} is a decoder LLM: a masked-LM θ_S needs an encoder "
                             "(tiny, small, minilm); use --init pretrained or supervised")
        corpus = get_corpus(source or "world")
        source, examples = corpus.name, examples or corpus.examples or profile().source_examples
    else:
        task = get_task(source or "product_sentiment")
        family = family_of(task, model)
        # a source of fewer rows than the recipe's (a user's file) is used whole
        source = task.name
        examples = examples or min(task.size, family.source_examples or profile().source_examples)
    config = config or source_config(model, init, source)
    key = cache_key(source, model, init, examples, config.to_dict(), seed,
                    *([_provenance(theta)] if theta else []))
    folder = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-{init}-{key}"
    resumable = dict(checkpoint_dir=folder.with_name(f".{folder.name}.checkpoints"),
                     checkpoint_every=SOURCE_CHECKPOINT_EVERY, resume=True)

    def train():
        tokenizer = load_tokenizer(str(theta) if theta else model)
        pretrained = backbone.config is None
        if init == "supervised":
            net = family.build(model, task, theta, seed=seed, pretrained=pretrained)
            data = family.encode(task.load("train", examples, seed), tokenizer, task,
                                 config.max_length)
            collate, trained = family.collator(tokenizer), net
        else:
            net = build_model(model, "mlm", seed=seed, pretrained=pretrained)
            data = encode_mlm(corpus.make(examples, seed), tokenizer, config.max_length)
            collate, trained = mlm_collator(tokenizer, seed=seed), MaskedTokensOnly(net)
        history = fit(trained, data, config=config.replace(seed=seed), collate_fn=collate,
                      **resumable)
        if init == "supervised":
            net = family.unwrap(net)
        return net, tokenizer, theta_card(history, config, model=model, init=init,
                                          source=source, examples=examples,
                                          **({"theta": str(theta)} if theta else {}))

    cached_theta(folder, train, reuse=not out_dir)
    shutil.rmtree(resumable["checkpoint_dir"], ignore_errors=True)
    return folder


def target_data(target: str | Task, labels: int, seed: int, tokenizer: PreTrainedTokenizerBase,
                max_length: int = 64,
                test_examples: int | None = None, model: str = "tiny") -> tuple[Dataset, Dataset]:
    """Return (train, test) of the target: `labels` seeded training examples, encoded, and the
    raw test rows (`test_examples` of them; default: the profile's)."""
    task = get_task(target)
    if labels < 1:
        raise InputError(f"--labels must be at least 1 (got {labels})")
    family = family_of(target, model)
    train = family.encode(task.load("train", labels, seed), tokenizer, task, max_length)
    return train, task.load("test", test_examples)


def transfer(
    theta_S: str | Path | None,
    target: str | Task = "film_sentiment",
    labels: int = 64,
    seed: int = 0,
    model: str = "tiny",
    config: TrainConfig | None = None,
    data: tuple[Dataset, Dataset] | None = None,
    *,
    arm: str | None = None,
    strategy: str = "full",
    strategy_options: dict | None = None,
    callbacks: Sequence[Callback] = (),
    family_options: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> tuple[Run, torch.nn.Module]:
    """Fine-tune θ_T(0) = θ_S (or random when θ_S is None) on the target; return (Run, θ_T*).

    θ_S's body is loaded with `from_pretrained`, the target gets a new head and a fresh
    optimizer. `data` = (train encoded, test rows) from `target_data`, to share them between
    arms. `strategy` (`training.strategies`: full, frozen, discriminative, gradual, ulmfit,
    lora) decides which weights train at which rate, with `strategy_options`; `callbacks` go to
    `fit` beside the strategy's, as do `checkpoint_dir`, `checkpoint_every` and `resume`;
    `family_options` change the family's options (as in `compare`).
    """
    task = get_task(target)
    family = family_of(target, model, family_options)
    config = (config or family.target_config(model)).replace(seed=seed)
    if theta_S is not None:
        _check_head(theta_S, task, model)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    train, test = data or target_data(target, labels, seed, tokenizer, config.max_length,
                                      model=model)
    family.check(train, test, task)
    net = family.build(model, task, theta_S, seed=seed)
    if strategy != "full" or strategy_options:
        net, groups, own = prepare(strategy, net, config.lr, weight_decay=config.weight_decay,
                                   **(strategy_options or {}))
    else:
        groups, own = None, []
    history = fit(net, train, config=config, collate_fn=family.collator(tokenizer),
                  evaluate_fn=family.evaluation(test, tokenizer, task, config), groups=groups,
                  callbacks=[*own, *callbacks], checkpoint_dir=checkpoint_dir,
                  checkpoint_every=checkpoint_every, resume=resume)
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    arm = arm or ("scratch" if theta_S is None else "transfer")
    return Run(arm, seed, metrics, history, family=family.name, strategy=strategy,
               trained=trained_parameters(groups) if groups else count_parameters(net, True),
               total=count_parameters(net)), net


_SAID: set = set()


def _check_head(theta_S, task: Task, model: str) -> None:
    """Check θ_S's folder; say once when its head has another number of labels than the task."""
    size = validate.head_size(validate.theta_folder(theta_S, model))
    if (task.family == "classification" and size is not None and size != task.num_classes
            and (str(theta_S), task.name) not in _SAID):
        _SAID.add((str(theta_S), task.name))
        warnings.warn(f"θ_S in {theta_S} has a {size}-label head and {task.name!r} has "
                      f"{task.num_classes} labels: the target gets a new {task.num_classes}-label "
                      "head (its body still comes from θ_S)", stacklevel=3)


def compare(target: str | Task = "film_sentiment", *, source: str | Task | None = None,
            model: str = "tiny", init: str | None = None, labels: int | None = None,
            seeds: int | None = None,
            arms: Sequence[str] | None = None, config: TrainConfig | None = None,
            theta_S: str | Path | None = None, others: dict[str, str | Path] | None = None,
            test_examples: int | None = None, unlabeled: str | None = None,
            selection: Selection | None = None, family_options: dict | None = None,
            checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
            resume: bool = False, save: str | Path | None = None, keep_models: bool = False,
            progress: bool = True) -> Comparison:
    """Run the arms on the same target data, label budget, steps and seeds; return them.

    An arm fine-tunes a θ_T(0): `scratch` (random), `pretrained` (the backbone's own weights),
    `transfer` (θ_S, trained on a source task), `dapt` (θ_S's recipe after masked-LM training on
    the `unlabeled` corpus of the target's domain) or a θ of `others` ({name: folder}); or it
    takes no gradient step on θ (`bow`; `zero_shot`, `few_shot` of a decoder LLM). Defaults come
    from the target's family; `family_options` change its options (e.g. {"shots": 8}).
    `selection` chooses every fine-tuned arm's learning rate and epochs the same way. With
    `checkpoint_dir`, finished runs are recorded and the one in progress checkpointed (every
    `checkpoint_every` steps, each epoch); `resume=True` continues from there. `save` keeps the
    θ_T* of seed 0 of `transfer` (else `pretrained`); `keep_models` keeps all in `result.models`.
    """
    start = time.perf_counter()
    task, family = get_task(target), family_of(target, model, family_options)
    source, init = source or family.source, init or family.init
    source_name = source if isinstance(source, str) else get_task(source).name
    labels = labels or family.labels
    seeds = default_seeds(model) if seeds is None else seeds
    _check_arguments(source, task, model, init, labels, seeds, theta_S, save, resume)
    theta_S = theta_S or pretrain_source(source, model, init)
    arms = list(arms or family.default_arms(model, init))
    arms += [arm for arm in others or {} if arm not in arms]
    thetas = _thetas(arms, theta_S, init, others, model, source, unlabeled)
    config = (config or family.target_config(model)).replace(progress=False)
    run = _Experiment(task, family, model, labels, config, load_tokenizer(str(theta_S)),
                      task.load("test", test_examples or family.test_examples), selection,
                      checkpoint_every, resume, family_options)
    result = Comparison(source_name, task.name, model, init, labels, seeds, {a: [] for a in arms},
                        str(theta_S), config.to_dict(), test_examples=len(run.test),
                        family=family.name, models={a: [] for a in arms} if keep_models else {})
    records = _Records(checkpoint_dir, result, resume)
    fixed: dict[str, dict] = {}  # metrics of arms that no seed changes
    for seed, arm in tqdm([(s, a) for s in range(seeds) for a in arms], desc="fine-tune",
                          disable=not progress):
        row = records.get(arm, seed)
        if row is None and arm in thetas:
            row, net = _fine_tune(run, arm, thetas[arm], seed, records.folder(arm, seed))
            if keep_models:
                result.models[arm].append(net)
            if save and arm == _reference(arms) and seed == 0:
                _save_theta_T(net, run, thetas[arm], Path(save), seed, row)
        elif row is None:  # an arm that no seed changes is measured once, filed per seed
            row = {**(fixed.get(arm) or _baseline(run, arm, theta_S, seed)), "seed": seed}
            if arm in family.seed_free:
                fixed[arm] = row
        records.put(arm, seed, row)
        result.arms[arm].append(row)
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class _Experiment:
    """What every run of one comparison shares: the target, its family, recipe and test rows."""

    task: Task
    family: TaskFamily
    model: str
    labels: int
    config: TrainConfig
    tokenizer: PreTrainedTokenizerBase
    test: Dataset
    selection: Selection | None
    checkpoint_every: int
    resume: bool
    options: dict | None  # the family's options, as given to `compare`
    _seed: dict = field(default_factory=dict)  # the current seed's rows, encoded once

    def rows(self, seed: int) -> tuple[Dataset, Dataset]:
        """Return the seed's raw training rows and their encoding (every arm sees the same)."""
        if seed not in self._seed:
            rows = self.task.load("train", self.labels, seed)
            encoded = self.family.encode(rows, self.tokenizer, self.task, self.config.max_length)
            self._seed.clear()
            self._seed[seed] = rows, encoded
        return self._seed[seed]


def _thetas(arms: list[str], theta_S: str | Path, init: str, others: dict | None, model: str,
            source: str, unlabeled: str | None) -> dict[str, str | Path | None]:
    """Return θ_T(0) of each fine-tuned arm, each built by its own small function; a θ of
    `others` is used as given, even under a built-in arm's name."""
    if "transfer" in arms and init == "pretrained" and "transfer" not in (others or {}):
        raise InputError("the transfer arm starts from a θ_S trained on a source task; "
                                  "with init='pretrained' the fine-tuned pretrained body is the "
                                  "`pretrained` arm (or give a source and init='supervised')")
    builders = {
        "scratch": lambda: None,
        "transfer": lambda: theta_S,
        "pretrained": lambda: theta_S if init == "pretrained" else pretrain_source(
            model=model, init="pretrained"),
        "dapt": lambda: _dapt(unlabeled, model, source, init),
    }
    thetas = dict(others or {})
    for arm in arms:
        if arm not in thetas and arm in builders:
            thetas[arm] = builders[arm]()
    return thetas


def _reference(arms: Sequence[str]) -> str:
    """Return the arm whose θ_T* `save` keeps: transfer, else the fine-tuned pretrained body."""
    return "transfer" if "transfer" in arms else "pretrained"


def _fine_tune(run: _Experiment, arm: str, theta: str | Path | None, seed: int,
               folder: Path | None) -> tuple[dict, torch.nn.Module]:
    """Fine-tune one arm's θ for one seed (its learning rate and epochs selected first, if
    asked); return its results row and θ_T*."""
    rows, train = run.rows(seed)
    chosen = _select(run, theta, rows, seed) if run.selection else {}
    tuned = run.config.replace(**{k: chosen[k] for k in ("lr", "epochs") if k in chosen},
                               **({"max_steps": None} if chosen else {}))
    result, net = transfer(theta, run.task, run.labels, seed, run.model, tuned,
                           data=(train, run.test), arm=arm, family_options=run.options,
                           checkpoint_dir=folder,
                           checkpoint_every=run.checkpoint_every, resume=run.resume)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    return {**result.to_dict(), **({"selected": chosen} if chosen else {})}, net


def _baseline(run: _Experiment, arm: str, theta_S: str | Path, seed: int) -> dict:
    """Return the results row of an arm without gradient steps on θ (bow, a prompt)."""
    rows, _ = run.rows(seed)
    metrics = run.family.baseline(arm, run.model, run.task, theta_S, rows, run.test,
                                  run.tokenizer, run.config, seed)
    return {"seed": seed, **metrics, "score": metrics[run.family.metric]}


def _save_theta_T(net: torch.nn.Module, run: _Experiment, theta: str | Path | None,
                  folder: Path, seed: int, row: dict) -> None:
    """Keep θ_T* (model + tokenizer) and a card saying where it came from, for `tl.predict`."""
    save_theta(run.family.unwrap(net), run.tokenizer, folder, {
        "theta": str(theta), "target": run.task.name, "labels": run.labels, "seed": seed,
        "model": run.model, "max_length": run.config.max_length,
        **{k: v for k, v in row.items() if k in run.family.columns}},
        card_name="theta_T.json")


class _Records:
    """The finished runs of a comparison, one JSON file each in `checkpoint_dir`: a resumed
    comparison reads them instead of training again."""

    def __init__(self, checkpoint_dir: str | Path | None, result: Comparison, resume: bool):
        self.dir = _runs_dir(checkpoint_dir, result, resume)
        self.resume = resume

    def _path(self, arm: str, seed: int) -> Path | None:
        return self.dir / f"{_slug(arm)}-seed{seed}.json" if self.dir else None

    def get(self, arm: str, seed: int) -> dict | None:
        """Return the recorded row of (arm, seed) when resuming, else None."""
        path = self._path(arm, seed)
        return json.loads(path.read_text()) if self.resume and path and path.exists() else None

    def folder(self, arm: str, seed: int) -> Path | None:
        """Return the checkpoint folder of the run (arm, seed) in progress."""
        path = self._path(arm, seed)
        return path.with_suffix("") if path else None

    def put(self, arm: str, seed: int, row: dict) -> None:
        """Record a finished run."""
        if path := self._path(arm, seed):
            write_atomically(path, json.dumps(row, allow_nan=False))


def _select(run: _Experiment, theta: str | Path | None, rows: Dataset, seed: int) -> dict:
    """Return the learning rate and epochs that the selection picks for one arm and seed, with
    the validation score of each rate (the labels less a validation share train; it scores)."""
    selection, config, family = run.selection, run.config, run.family
    if len(rows) < 4:
        raise InputError(f"selection needs at least 4 labels to hold some out (got "
                                  f"{len(rows)}); pass more labels or selection=None")
    split = rows.train_test_split(test_size=selection.validation, seed=seed)
    fit_rows, held = split["train"], split["test"]
    batches = math.ceil(len(fit_rows) / config.batch_size)
    epochs = max(config.epochs, math.ceil(selection.min_steps / batches))
    sign = 1 if family.higher_is_better else -1
    scores, best = {}, None
    for lr in selection.lrs or (config.lr / 3, config.lr, 3 * config.lr):
        trial = config.replace(lr=lr, epochs=epochs, max_steps=None, eval_every=1)
        encoded = family.encode(fit_rows, run.tokenizer, run.task, config.max_length)
        result, _ = transfer(theta, run.task, len(fit_rows), seed, run.model, trial,
                             data=(encoded, held), family_options=run.options)
        top = max((sign * e[family.metric], -e["epoch"], e["epoch"])
                  for e in result.history.evals)
        scores[f"{lr:g}"] = sign * top[0]
        if best is None or top[0] > best[0]:
            best = (top[0], lr, top[2])
    steps = math.ceil(selection.min_steps / math.ceil(len(rows) / config.batch_size))
    return {"lr": best[1], "epochs": max(best[2], steps), "validation": scores}


def _dapt(unlabeled: str | None, model: str, source: str, init: str) -> Path:
    """Return θ_S with domain-adaptive pretraining before it: masked-LM training on the target
    domain's unlabeled text, from the backbone's weights (random for a world-only backbone),
    then, for a supervised θ_S, the source task's training from that body (its default
    recipe). For a pretrained or masked-LM θ_S, the domain-adapted body is the arm's θ."""
    if unlabeled is None:
        raise InputError("the dapt arm needs unlabeled text of the target's domain: pass "
                         "unlabeled=<a corpus of tasks.CORPORA> (--unlabeled-file FILE)")
    body = pretrain_source(unlabeled, model, "mlm")
    return pretrain_source(source, model, "supervised", theta=body) if init == "supervised" \
        else body


def _provenance(theta: str | Path) -> dict:
    """Return what identifies a θ folder in a cache key: its path and its card (if any)."""
    card = Path(theta) / "theta_S.json"
    return {"start": str(Path(theta).resolve()),
            "card": card.read_text() if card.exists() else None}


def _slug(arm: str) -> str:
    """Return an arm's name as a file name (letters, digits, '-' and '_')."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in arm)


def _check_arguments(source: str, task: Task, model: str, init: str, labels: int, seeds: int,
                     theta_S, save, resume: bool) -> None:
    """Raise on a bad argument of `compare` before anything is trained."""
    validate.choice("init", init, INITS)
    if save and Path(save).exists() and any(Path(save).iterdir()) and not (
            resume and (Path(save) / "theta_T.json").exists()):
        raise OutputExists(f"{save} exists and is not empty; choose a new folder to "
                                    "save θ_T* in (transfer-lab never overwrites your files)")
    if theta_S is None and init == "supervised":
        source_task = get_task(source)
        source_task.require_data()
    get_backbone(model)
    task.require_data()
    for name, value in (("labels", labels), ("seeds", seeds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"--{name} must be at least 1 (got {value!r})")
    if labels > task.size:
        raise InputError(f"--labels {labels} is more than the {task.size} training examples of "
                         f"{task.name!r}; use at most {task.size}")


def _runs_dir(checkpoint_dir, result: Comparison, resume: bool) -> Path | None:
    """Return the folder of a comparison's checkpoints; on resume, check it is the same one."""
    if checkpoint_dir is None:
        if resume:
            raise InputError("resume=True needs the folder of the comparison: pass "
                             "checkpoint_dir=...")
        return None
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in result.to_dict().items()
                if k not in ("arms", "seeds", "seconds", "summary", "differences")}
    card = folder / "comparison.json"
    if not resume and any(folder.iterdir()):
        raise OutputExists(f"{folder} holds checkpoints of an earlier comparison; pass "
                              "resume=True to continue it, or choose a new folder")
    if resume and card.exists():
        saved = json.loads(card.read_text())
        for key, value in settings.items():
            if saved.get(key) != json.loads(json.dumps(value)):
                raise InputError(f"{folder} holds a comparison with {key}={saved.get(key)!r}, "
                                 f"not {value!r}; resume with the same settings, or use a new "
                                 "folder")
    else:
        write_atomically(card, json.dumps(settings, indent=2, allow_nan=False))
    return folder
