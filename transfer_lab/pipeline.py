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
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from transfer_lab import validate
from transfer_lab.cache import cache_key, cached_theta, save_theta, theta_card
from transfer_lab.config import TrainConfig, cache_dir, profile
from transfer_lab.data.tasks import Corpus, Task, get_corpus, get_task
from transfer_lab.families import TaskFamily, family_for
from transfer_lab.models import MaskedTokensOnly, build_model, get_backbone, load_tokenizer
from transfer_lab.models.mlm import encode_mlm, mlm_collator
from transfer_lab.results import Comparison, Run
from transfer_lab.training.checkpoint import write_atomically
from transfer_lab.training.fit import fit

INITS = ("supervised", "mlm", "pretrained")


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


def family_of(task: str, model: str = "tiny") -> TaskFamily:
    """Return the family that trains a registered task on a backbone (encoder or decoder LLM)."""
    return family_for(get_task(task).family, get_backbone(model).decoder)


def default_seeds(model: str) -> int:
    """Return the seeds a comparison runs by default: 5 on a tiny world model, 3 on a
    pretrained backbone (MiniLM, BERT, SmolLM2), whose runs cost more."""
    return SEEDS_TINY if get_backbone(model).world_only else SEEDS_PRETRAINED


def source_config(model: str, init: str = "supervised", source: str | None = None) -> TrainConfig:
    """Return the default recipe of θ_S's training for a backbone, objective and source."""
    if init == "mlm":
        return mlm_config(get_corpus(source or "world"), model)
    return family_of(source or "product_sentiment", model).source_config(model)


def target_config(model: str, target: str = "film_sentiment") -> TrainConfig:
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
    source: str | None = None,
    model: str = "tiny",
    init: str = "supervised",
    *,
    examples: int | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    start: str | Path | None = None,
) -> Path:
    """Train θ_S on the source and return the folder `save_pretrained` wrote (model + tokenizer).

    `init="supervised"` trains the source task's model (its family's head) on its labels
    (default source: product_sentiment); `init="mlm"` trains a masked-language model on an
    unlabeled corpus of `tasks.CORPORA` (default: "world"); `init="pretrained"` uses the
    backbone's own pretrained weights as θ_S. Masked-LM training starts from the backbone's
    pretrained weights where it has them (MiniLM: domain-adaptive pretraining, the `dapt` arm),
    else from random. `start` (a θ folder, e.g. a masked-LM θ) is where supervised training
    starts instead of the backbone: the `dapt` arm's domain-adapted body. Without `out_dir`, θ_S
    is cached (keyed by every argument) and reused: a later chapter loads it instead of training
    again. Training writes checkpoints beside the folder, so a run cut short continues where it
    stopped.
    """
    validate.choice("init", init, INITS)
    backbone = get_backbone(model)
    if start is not None and init != "supervised":
        raise validate.InputError(f"start= sets where supervised source training begins; init={init!r} "
                         "trains from the backbone (use init='supervised')")
    if init == "pretrained":
        if backbone.config is not None:
            raise validate.InputError(f"model {model!r} has no pretrained weights; use init='supervised' "
                             "or 'mlm', or a pretrained model such as 'minilm'")
        return Path(backbone.path())
    if init == "mlm":
        if backbone.decoder:
            raise validate.InputError(f"model {model!r} is a decoder LLM: a masked-LM θ_S needs an encoder "
                             "(tiny, small, minilm); use --init pretrained or supervised")
        corpus = get_corpus(source or "world")
        source, examples = corpus.name, examples or corpus.examples or profile().source_examples
    else:
        task = get_task(source or "product_sentiment")
        family = family_of(task.name, model)
        # a source of fewer rows than the recipe's (a user's file) is used whole
        source = task.name
        examples = examples or min(task.size, family.source_examples or profile().source_examples)
    config = config or source_config(model, init, source)
    key = cache_key(source, model, init, examples, config.to_dict(), seed,
                    *([_provenance(start)] if start else []))
    folder = Path(out_dir) if out_dir else cache_dir() / "theta_S" / f"{model}-{init}-{key}"
    resumable = dict(checkpoint_dir=folder.with_name(f".{folder.name}.checkpoints"),
                     checkpoint_every=SOURCE_CHECKPOINT_EVERY, resume=True)

    def train():
        tokenizer = load_tokenizer(str(start) if start else model)
        pretrained = backbone.config is None
        if init == "supervised":
            net = family.build(model, task, start, seed=seed, pretrained=pretrained)
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
                                          **({"start": str(start)} if start else {}))

    cached_theta(folder, train, reuse=not out_dir)
    shutil.rmtree(resumable["checkpoint_dir"], ignore_errors=True)
    return folder


def target_data(target: str, labels: int, seed: int, tokenizer: PreTrainedTokenizerBase,
                max_length: int = 64,
                test_examples: int | None = None, model: str = "tiny") -> tuple[Dataset, Dataset]:
    """Return (train, test) of the target: `labels` seeded training examples, encoded, and the
    raw test rows (`test_examples` of them; default: the profile's)."""
    task = get_task(target)
    if labels < 1:
        raise validate.InputError(f"--labels must be at least 1 (got {labels})")
    family = family_of(target, model)
    train = family.encode(task.load("train", labels, seed), tokenizer, task, max_length)
    return train, task.load("test", test_examples)


def transfer(
    theta_S: str | Path | None,
    target: str = "film_sentiment",
    labels: int = 64,
    seed: int = 0,
    model: str = "tiny",
    config: TrainConfig | None = None,
    data: tuple[Dataset, Dataset] | None = None,
    *,
    arm: str | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> tuple[Run, torch.nn.Module]:
    """Fine-tune θ_T(0) = θ_S (or random when θ_S is None) on the target; return (Run, θ_T*).

    θ_S's body is loaded with `from_pretrained`, the target gets a new head and a fresh
    optimizer. `data` = (train encoded, test rows) from `target_data`, to share them between
    arms. `checkpoint_dir`, `checkpoint_every` and `resume` go to `fit`.
    """
    task = get_task(target)
    family = family_of(target, model)
    config = (config or family.target_config(model)).replace(seed=seed)
    if theta_S is not None:
        _check_head(theta_S, task, model)
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    train, test = data or target_data(target, labels, seed, tokenizer, config.max_length,
                                      model=model)
    family.check(train, test, task)
    net = family.build(model, task, theta_S, seed=seed)
    history = fit(net, train, config=config, collate_fn=family.collator(tokenizer),
                  evaluate_fn=family.evaluation(test, tokenizer, task, config),
                  checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                  resume=resume)
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    arm = arm or ("scratch" if theta_S is None else "transfer")
    return Run(arm, seed, metrics, history, family=family.name), net


_SAID: set = set()


def _check_head(theta_S, task: Task, model: str) -> None:
    """Check θ_S's folder; say once when its head has another number of labels than the task."""
    size = validate.head_size(validate.theta_folder(theta_S, model))
    if (task.family == "classification" and size is not None and size != task.num_labels
            and (str(theta_S), task.name) not in _SAID):
        _SAID.add((str(theta_S), task.name))
        warnings.warn(f"θ_S in {theta_S} has a {size}-label head and {task.name!r} has "
                      f"{task.num_labels} labels: the target gets a new {task.num_labels}-label "
                      "head (its body still comes from θ_S)", stacklevel=3)


def compare(
    target: str = "film_sentiment",
    *,
    source: str | None = None,
    model: str = "tiny",
    init: str | None = None,
    labels: int | None = None,
    seeds: int | None = None,
    arms: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    theta_S: str | Path | None = None,
    others: dict[str, str | Path] | None = None,
    test_examples: int | None = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    save: str | Path | None = None,
    keep_models: bool = False,
    unlabeled: str | None = None,
    selection: Selection | None = None,
) -> Comparison:
    """Run the arms on the same target data, label budget, steps and seeds; return them.

    An arm fine-tunes a θ_T(0): `scratch` (random), `transfer` (θ_S), `pretrained` (the
    backbone's own weights), `dapt` (θ_S's recipe with masked-LM training on the `unlabeled`
    corpus of the target's domain before it: the backbone, then domain text, then the source) or
    a θ_S of `others` ({name: folder}); or one of the family's arms without gradient steps
    (`zero_shot`, `few_shot` for a decoder LLM). Defaults come from the target's family: arms,
    source task, θ_S objective, label budget, recipe and test size. With `checkpoint_dir`, each
    finished run is recorded there and the run in progress is checkpointed (every
    `checkpoint_every` steps and each epoch); `resume=True` skips the recorded runs and
    continues the interrupted one, so the result equals an uninterrupted one. `save` keeps θ_T*
    of the transfer arm's first seed (model + tokenizer) in that folder, for `tl.predict` and
    `transfer-lab predict`; `keep_models` keeps every θ_T* in `result.models`. With `selection`,
    every fine-tuned arm chooses its learning rate and epochs by the same procedure
    (`Selection`); each run records what it chose. `seeds` defaults to `default_seeds(model)`.
    """
    start = time.perf_counter()
    task = get_task(target)
    family = family_of(target, model)
    source, init = source or family.source, init or family.init
    labels = labels or family.labels
    seeds = default_seeds(model) if seeds is None else seeds
    _check_arguments(source, task, model, init, labels, seeds, theta_S)
    if save and Path(save).exists() and any(Path(save).iterdir()) and not (
            resume and (Path(save) / "theta_T.json").exists()):
        raise validate.OutputExists(f"{save} exists and is not empty; choose a new folder to save θ_T* "
                              "in (transfer-lab never overwrites your files)")
    theta_S = theta_S or pretrain_source(source, model, init)
    arms = list(arms or family.default_arms(model, init))
    arms += [arm for arm in others or {} if arm not in arms]
    thetas = {"scratch": None, "transfer": theta_S, **(others or {})}
    if "pretrained" in arms and "pretrained" not in thetas:  # a θ of `others` is used as given
        thetas["pretrained"] = pretrain_source(model=model, init="pretrained")
    if "dapt" in arms and "dapt" not in thetas:
        thetas["dapt"] = _dapt(unlabeled, model, source, init)
    config = (config or family.target_config(model)).replace(progress=False)
    tokenizer = load_tokenizer(str(theta_S))
    test = task.load("test", test_examples or family.test_examples)
    result = Comparison(source, target, model, init, labels, seeds, {a: [] for a in arms},
                        str(theta_S), config.to_dict(), test_examples=len(test),
                        family=family.name, models={a: [] for a in arms} if keep_models else {})
    runs_dir = _runs_dir(checkpoint_dir, result, resume)
    data, fixed = {}, {}
    for seed, arm in tqdm([(s, a) for s in range(seeds) for a in arms], desc="fine-tune",
                          disable=not progress):
        record = runs_dir / f"{_slug(arm)}-seed{seed}.json" if runs_dir else None
        if resume and record and record.exists():  # finished before the interruption
            result.arms[arm].append(json.loads(record.read_text()))
            continue
        if seed not in data:  # every arm of a seed sees the same examples
            rows = task.load("train", labels, seed)
            data = {seed: (rows, family.encode(rows, tokenizer, task, config.max_length))}
        rows, train = data[seed]
        if arm not in thetas:  # an arm without gradient steps (a prompt, say)
            metrics = fixed.get(arm) or family.baseline(arm, model, task, theta_S, rows, test,
                                                        tokenizer, config, seed)
            if arm in family.seed_free:
                fixed[arm] = metrics
            row = {"seed": seed, **metrics, "score": metrics[family.metric]}
        else:
            run_dir = record.with_suffix("") if record else None
            chosen = (_select(selection, thetas[arm], target, rows, seed, model, config,
                              tokenizer) if selection else {})
            tuned = config.replace(**{k: chosen[k] for k in ("lr", "epochs") if k in chosen},
                                   **({"max_steps": None} if chosen else {}))
            run, net = transfer(thetas[arm], target, labels, seed, model, tuned,
                                data=(train, test), arm=arm, checkpoint_dir=run_dir,
                                checkpoint_every=checkpoint_every, resume=resume)
            row = {**run.to_dict(), **({"selected": chosen} if chosen else {})}
            if keep_models:
                result.models[arm].append(net)
            if save and arm == "transfer" and seed == 0:
                save_theta(family.unwrap(net), tokenizer, Path(save), {
                    "theta_S": str(theta_S), "target": target, "labels": labels, "seed": seed,
                    "model": model, "max_length": config.max_length,
                    **{k: v for k, v in run.metrics.items() if isinstance(v, (int, float))}},
                    card_name="theta_T.json")
            if run_dir:
                shutil.rmtree(run_dir, ignore_errors=True)
        result.arms[arm].append(row)
        if record:
            write_atomically(record, json.dumps(row))
    result.seconds = time.perf_counter() - start
    return result


def _select(selection: Selection, theta: str | Path | None, target: str, rows: Dataset,
            seed: int, model: str, config: TrainConfig,
            tokenizer: PreTrainedTokenizerBase) -> dict:
    """Return the learning rate and epochs that `selection` picks for one arm and seed, with the
    validation score of each rate (the labels less a validation share train; it scores)."""
    task, family = get_task(target), family_of(target, model)
    if len(rows) < 4:
        raise validate.InputError(f"selection needs at least 4 labels to hold some out (got {len(rows)}); "
                         "pass more labels or selection=None")
    split = rows.train_test_split(test_size=selection.validation, seed=seed)
    fit_rows, held = split["train"], split["test"]
    batches = math.ceil(len(fit_rows) / config.batch_size)
    epochs = max(config.epochs, math.ceil(selection.min_steps / batches))
    sign = 1 if family.higher_is_better else -1
    scores, best = {}, None
    for lr in selection.lrs or (config.lr / 3, config.lr, 3 * config.lr):
        trial = config.replace(lr=lr, epochs=epochs, max_steps=None, eval_every=1)
        run, _ = transfer(theta, target, len(fit_rows), seed, model, trial,
                          data=(family.encode(fit_rows, tokenizer, task, config.max_length), held))
        curve = [(sign * e[family.metric], -e["epoch"], e["epoch"]) for e in run.history.evals]
        top = max(curve)
        scores[f"{lr:g}"] = sign * top[0]
        if best is None or top[0] > best[0]:
            best = (top[0], lr, top[2])
    return {"lr": best[1], "epochs": max(best[2], math.ceil(
        selection.min_steps / math.ceil(len(rows) / config.batch_size))),
            "validation": scores}


def _dapt(unlabeled: str | None, model: str, source: str, init: str) -> Path:
    """Return θ_S with domain-adaptive pretraining before it: masked-LM training on the target
    domain's unlabeled text, from the backbone's weights (random for a world-only backbone),
    then, for a supervised θ_S, the source task's training from that body (its default
    recipe). For a pretrained or masked-LM θ_S, the domain-adapted body is the arm's θ."""
    if unlabeled is None:
        raise validate.InputError("the dapt arm needs unlabeled text of the target's domain: pass "
                         "unlabeled=<a corpus of tasks.CORPORA> (--unlabeled-file FILE)")
    body = pretrain_source(unlabeled, model, "mlm")
    return pretrain_source(source, model, "supervised", start=body) if init == "supervised" \
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
                     theta_S) -> None:
    """Raise on a bad argument of `compare` before anything is trained."""
    validate.choice("init", init, INITS)
    if theta_S is None and init == "supervised":
        source_task = get_task(source)
        source_task.require_data()
    get_backbone(model)
    task.require_data()
    for name, value in (("labels", labels), ("seeds", seeds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise validate.InputError(f"--{name} must be at least 1 (got {value!r})")
    if labels > task.size:
        raise validate.InputError(f"--labels {labels} is more than the {task.size} training examples of "
                         f"{task.name!r}; use at most {task.size}")


def _runs_dir(checkpoint_dir, result: Comparison, resume: bool) -> Path | None:
    """Return the folder of a comparison's checkpoints; on resume, check it is the same one."""
    if checkpoint_dir is None:
        if resume:
            raise validate.InputError("resume=True needs the folder of the comparison: pass "
                             "checkpoint_dir=...")
        return None
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in result.to_dict().items()
                if k not in ("arms", "seeds", "seconds", "summary", "differences")}
    card = folder / "comparison.json"
    if not resume and any(folder.iterdir()):
        raise validate.OutputExists(f"{folder} holds checkpoints of an earlier comparison; pass "
                              "resume=True to continue it, or choose a new folder")
    if resume and card.exists():
        saved = json.loads(card.read_text())
        for key, value in settings.items():
            if saved.get(key) != json.loads(json.dumps(value)):
                raise validate.InputError(f"{folder} holds a comparison with {key}={saved.get(key)!r}, "
                                 f"not {value!r}; resume with the same settings, or use a new "
                                 "folder")
    else:
        write_atomically(card, json.dumps(settings, indent=2))
    return folder
