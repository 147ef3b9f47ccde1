"""Real review sentences: the results file of the book's real-data thread (DESIGN.md §8).

    python -m benchmarks.real                       # every part (hours on 2 cores: below)
    python -m benchmarks.real --part matrix         # one part (curve, matrix, selection, decoder)
    python -m benchmarks.real --part curve --seeds 1

On the UCI sentences (`product_sentences`, `film_sentences`, `restaurant_sentences`: 500 fixed
test sentences each, every arm scored on all 500), with the package's default recipes
(`tl.compare`, no `Selection`), it measures:

- `curve`: film_sentences at 16, 64 and 256 labels: bow, scratch, pretrained MiniLM and transfer
  (MiniLM after the product_sentences source task); per arm and budget the mean and 95 % CI over
  seeds, and transfer − pretrained and pretrained − scratch paired by seed, with their CIs.
- `matrix`: every target domain at 64 labels: bow, pretrained MiniLM and transfer from each
  other domain (an arm `from_<domain>` whose θ_S is that domain's task), each
  `from_<domain>` − pretrained paired by seed; and the bag-of-words model trained on the source
  domain alone (its whole training pool, the rows θ_S saw) and scored on the target's test
  sentences (`bow_source`, DESIGN.md §4: "a bag-of-words model trained on the source domain
  alone reached 0.79 on the target"), which costs seconds.
- `selection`: what a practitioner can measure before fine-tuning, for each target and each
  candidate start (MiniLM's own weights, each other domain's θ_S from `matrix`): LogME of its
  frozen features on the 64 labelled rows each seed draws, and each source's vocabulary
  overlap with the target (`lab.transferability`); chapter 7 ranks them against `matrix`.
- `decoder`: SmolLM2 on film_sentences: zero_shot, few_shot and pretrained (LoRA fine-tuned) at
  64 and 256 labels, beside MiniLM's pretrained arm at the same budgets (read from `curve` when
  it ran the same seeds, else run), with each arm's seconds per run.

Each comparison is kept compactly (its `Comparison.to_dict()` without the training curves: the
summary, the paired differences, and per run its seed, score and seconds), scores as fractions
(accuracy in [0, 1]). The file (benchmarks/results/real.json: the command, the date, the
machine's facts) is written after every comparison, each part with its own command, date and
seconds; a part is `complete` once it holds every cell (budget or target). `--part` runs a part
again, `--target` only some targets of `matrix` or `selection` (their cells merge with the
stored ones: two targets can run at once, one thread each), and the file's other parts stay.

Time on this machine's 2 cores, estimated from timed calls made while the book executed beside
them (load ≈ 6): a MiniLM step (batch 16) took ≈ 8.7 s and a run's load and scoring of 500
test sentences ≈ 17 s; every MiniLM run takes at least 120 steps (`MIN_STEPS_PRETRAINED`), so
16, 64 and 256 labels cost the same. SmolLM2 at 8 labels, 1 seed, 500 test sentences: zero_shot
74 s (with the model's load), few_shot 28 s, LoRA (2 steps) and scoring 123 s; a LoRA step
(batch 8) ≈ 8 s at that load (≈ 2 s idle: benchmarks/llm.py). Hence, at that load:
curve ≈ 8 h (27 runs, ≈ 3,300 steps), matrix ≈ 8½ h (27 runs and three θ_S of 80 steps),
decoder ≈ 50 min (the LoRA arm's 16 and 64 steps a seed, three seeds each; MiniLM read from
`curve`, else ≈ 2 h more). On a machine to itself, expect a fraction of that (the load, not
the work, set these figures); the file records each comparison's seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common import RESULTS, save

TARGET, SOURCE = "film_sentences", "product_sentences"
DOMAINS = ("product", "film", "restaurant")
BUDGETS, MATRIX_LABELS, DECODER_BUDGETS = (16, 64, 256), 64, (64, 256)
SEEDS = 3
CURVE_ARMS = ["bow", "scratch", "pretrained", "transfer"]
CURVE_PAIRS = [("transfer", "pretrained"), ("pretrained", "scratch")]  # paired by seed
DECODER_ARMS = ["zero_shot", "few_shot", "pretrained"]
TEST = 500  # every test sentence of a domain (sentences.TEST_SIZE)
PARTS = ("curve", "matrix", "selection", "decoder")

CONFIG = None  # the recipe of every fine-tuned arm: None, the family's default (tests shrink it)


def expected(part: str) -> list[str]:
    """Return the cells a part holds when complete: its budgets or its target domains."""
    budgets = {"curve": BUDGETS, "decoder": DECODER_BUDGETS}.get(part)
    return [str(n) for n in budgets] if budgets else list(DOMAINS)


def compact(c) -> dict:
    """Return a comparison as `Comparison.to_dict()` keeps it, less the training curves: each run
    as its seed, score and seconds, θ_S as its folder's name in the θ cache."""
    kept = {k: v for k, v in c.to_dict().items() if k != "arms"}
    if kept.get("theta_S"):  # the folder's name in the θ cache, not this machine's path
        kept["theta_S"] = Path(kept["theta_S"]).name
    return kept | {"runs": {arm: [{k: r.get(k) for k in ("seed", "score", "seconds")}
                                  for r in rows] for arm, rows in c.arms.items()}}


def paired(c, arm: str, baseline: str) -> dict:
    """Return `arm` − `baseline` paired by seed: mean, 95 % CI and the seeds."""
    return c.differences(arm=arm)[f"{arm}-{baseline}"]


def fmt(cell: dict) -> str:
    """Return a summary or difference cell as 'mean [lo, hi]' in accuracy points."""
    lo, hi = cell["ci95"]
    if lo is None:
        return f"{100 * cell['mean']:.1f}"
    return f"{100 * cell['mean']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def say(name: str, c, pairs: dict) -> None:
    """Print one progress line: each arm's mean and CI, the paired differences, the seconds."""
    levels = ", ".join(f"{arm} {fmt(cell['score'])}" for arm, cell in c.summary().items())
    diffs = "".join(f"; {k} {fmt(v)}" for k, v in pairs.items())
    print(f"  {name}: {levels}{diffs} ({c.seconds:.0f} s)", flush=True)


def curve(seeds: int = SEEDS, keep=lambda part: None) -> dict:
    """Run bow, scratch, pretrained and transfer (product → film) at each budget; `keep` is
    called with the part so far after each comparison."""
    import transfer_lab as tl

    out = {}
    for labels in BUDGETS:
        c = tl.compare(TARGET, source=SOURCE, model="minilm", init="supervised", labels=labels,
                       seeds=seeds, arms=CURVE_ARMS, config=CONFIG, test_examples=TEST,
                       progress=False)
        pairs = {f"{a}-{b}": paired(c, a, b) for a, b in CURVE_PAIRS if {a, b} <= set(c.arms)}
        out[str(labels)] = compact(c) | {"paired": pairs}
        say(f"{labels} labels", c, pairs)
        keep(out)
    return out


def bow_source(source: str, target: str, seeds: int) -> dict:
    """Return bag-of-words trained on the source task's training pool alone (the rows θ_S saw)
    and scored on the target's test sentences: mean and 95 % CI over seeds (the seed draws the
    cross-validation folds that choose C), and per seed its score."""
    from transfer_lab import stats
    from transfer_lab.data.tasks import get_task
    from transfer_lab.families.bow import bow_metrics

    src, test = get_task(source), get_task(target).load("test", TEST)
    rows = []
    for seed in range(seeds):
        train = src.load("train", src.size, seed)
        start = time.perf_counter()
        m = bow_metrics(train["text"], train["label"], test["text"], test["label"], seed)
        rows.append({"seed": seed, "score": m["accuracy"], "C": m["C"],
                     "seconds": time.perf_counter() - start})
    cell = stats.summarize([r["score"] for r in rows], (0.0, 1.0))
    return {"source": source, "target": target, "train_examples": src.size,
            "test_examples": len(test), "mean": cell["mean"], "ci95": cell["ci95"], "runs": rows}


def matrix(seeds: int = SEEDS, keep=lambda part: None, targets=DOMAINS) -> dict:
    """Run each target domain at 64 labels: bow, pretrained and transfer from each other domain;
    `keep` is called with the part so far after each target."""
    import transfer_lab as tl

    out = {}
    for target in targets:
        sources = [d for d in DOMAINS if d != target]
        thetas = {f"from_{d}": tl.pretrain_source(f"{d}_sentences", "minilm", "supervised")
                  for d in sources}
        c = tl.compare(f"{target}_sentences", source=f"{sources[0]}_sentences", model="minilm",
                       init="supervised", labels=MATRIX_LABELS, seeds=seeds,
                       arms=["bow", "pretrained", *thetas], others=thetas, config=CONFIG,
                       test_examples=TEST, progress=False)
        pairs = {f"{arm}-pretrained": paired(c, arm, "pretrained") for arm in thetas}
        out[target] = compact(c) | {"paired": pairs, "bow_source": {
            f"from_{d}": bow_source(f"{d}_sentences", f"{target}_sentences", seeds)
            for d in sources}}
        say(f"{target} ← {', '.join(sources)}", c, pairs)
        print("    bow trained on the source alone: " + ", ".join(
            f"{k} {fmt(v)}" for k, v in out[target]["bow_source"].items()), flush=True)
        keep(out)
    return out


def selection(seeds: int = SEEDS, keep=lambda part: None, targets=DOMAINS) -> dict:
    """Score each candidate start of each target before any fine-tuning: LogME of its frozen
    features on the target's 64 labelled rows of each seed (the rows `matrix` trains on), for
    MiniLM's own weights (`pretrained`) and each other domain's θ_S, and the vocabulary overlap
    of each source's training pool with the target's; `keep` is called after each target."""
    import transfer_lab as tl
    from transfer_lab.data.tasks import get_task
    from transfer_lab.lab.strategies import features
    from transfer_lab.lab.transferability import domain_overlap, logme

    out = {}
    for target in targets:
        task = get_task(f"{target}_sentences")
        starts = {"pretrained": None} | {
            f"from_{d}": tl.pretrain_source(f"{d}_sentences", "minilm", "supervised")
            for d in DOMAINS if d != target}
        cells = {}
        for arm, theta in starts.items():
            scores = []
            for seed in range(seeds):
                rows = task.load("train", MATRIX_LABELS, seed)
                scores.append(logme(features(theta, rows["text"], model="minilm"),
                                    rows["label"]))
            cells[arm] = {"logme": scores}
            if theta is not None:
                cells[arm]["overlap"] = domain_overlap(f"{arm[5:]}_sentences", task.name,
                                                       n=task.size)  # each whole pool
        out[target] = cells
        print(f"  {target}: " + ", ".join(
            f"{arm} LogME {sum(c['logme']) / len(c['logme']):.3f}"
            + (f", overlap {c['overlap']:.3f}" if "overlap" in c else "")
            for arm, c in cells.items()), flush=True)
        keep(out)
    return out


def decoder(seeds: int = SEEDS, keep=lambda part: None, curve_done: dict | None = None) -> dict:
    """Run SmolLM2's zero_shot, few_shot and LoRA-fine-tuned pretrained arms on film_sentences at
    64 and 256 labels, beside MiniLM's pretrained arm at the same budget (from `curve_done` where
    it ran the same seeds and test sentences, else run here); `keep` is called after each."""
    import transfer_lab as tl

    out = {}
    for labels in DECODER_BUDGETS:
        c = tl.compare(TARGET, model="smollm2", init="pretrained", labels=labels, seeds=seeds,
                       arms=DECODER_ARMS, config=CONFIG, test_examples=TEST, progress=False)
        minilm = (curve_done or {}).get(str(labels))
        if not (minilm and minilm["seeds"] == seeds and minilm["test_examples"] == TEST):
            m = tl.compare(TARGET, model="minilm", init="pretrained", labels=labels, seeds=seeds,
                           arms=["pretrained"], config=CONFIG, test_examples=TEST,
                           progress=False)
            minilm = compact(m) | {"from": "run here"}
            say(f"{labels} labels, MiniLM", m, {})
        else:
            minilm = {"from": "curve"} | {k: v for k, v in minilm.items() if k != "paired"}
        seconds = {arm: sum(r["seconds"] for r in rows) / len(rows)
                   for arm, rows in c.arms.items()}
        out[str(labels)] = compact(c) | {
            "seconds_per_run": seconds,
            "minilm_pretrained": {"score": minilm["summary"]["pretrained"]["score"],
                                  "seconds_per_run": sum(r["seconds"] for r in minilm["runs"][
                                      "pretrained"]) / len(minilm["runs"]["pretrained"]),
                                  "runs": minilm["runs"]["pretrained"], "from": minilm["from"]}}
        say(f"{labels} labels, SmolLM2", c, {})
        keep(out)
    return out


def main(parts: tuple[str, ...] = PARTS, seeds: int = SEEDS,
         command: str = "python -m benchmarks.real", targets: tuple[str, ...] = DOMAINS) -> dict:
    """Run the parts, printing a line per comparison, and save real.json after each one (each
    part with its own command and date, the file's other parts kept)."""
    import transfer_lab as tl

    tl.quiet()
    path = RESULTS / "real.json"

    def stored() -> dict:
        return json.loads(path.read_text()).get("parts", {}) if path.exists() else {}

    def keep(part: str, results: dict, seconds: float | None = None):
        # the file as it stands now, this part's results merged in (a run of some targets adds
        # to the others'; parts run at once keep each other's); complete once every cell is in
        before = stored().get(part, {})
        if before.get("seeds") == seeds:  # seconds: this run's added to the stored cells'
            results = before.get("results", {}) | results
            seconds = before.get("seconds") if seconds is None else (
                (before.get("seconds") or 0) + seconds)
        complete = set(expected(part)) <= set(results)
        done = stored() | {part: {"complete": complete, "seeds": seeds, "seconds": seconds,
                                  "command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
                                  "results": results}}
        save("real", {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
                      "parts": done}, quiet=True)

    for part in parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        store = lambda value, part=part: keep(part, value)  # noqa: E731
        if part == "decoder":
            value = decoder(seeds, store, (stored().get("curve") or {}).get("results"))
        elif part == "curve":
            value = curve(seeds, store)
        else:
            value = {"matrix": matrix, "selection": selection}[part](seeds, store, targets)
        keep(part, value, seconds=time.perf_counter() - start)
        print(f"  {part}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"wrote {path}")
    done = stored()
    return done


def report() -> str:
    """Return the stored parts as markdown tables (accuracy %, mean [95 % CI] over seeds)."""
    from transfer_lab.lab import real

    results = real.load(RESULTS / "real.json")
    pct = lambda r: (f"{100 * r['mean']:.1f}" if r["lo"] is None  # noqa: E731
                     else f"{100 * r['mean']:.1f} [{100 * r['lo']:.1f}, {100 * r['hi']:.1f}]")
    out = []

    def table(title: str, frame, index: str, columns: str, part: str) -> None:
        wide = frame.assign(cell=frame.apply(pct, axis=1)).pivot(index=index, columns=columns,
                                                                   values="cell")
        out.extend([f"### {title}", f"`{real.provenance(results, part)}`", "",
                    wide.fillna("–").to_markdown(), ""])

    parts = results["parts"]
    if parts.get("curve", {}).get("complete"):
        table("Film sentences, MiniLM arms", real.curve(results), "labels", "arm", "curve")
        table("Paired differences (points)", real.curve_gains(results), "labels", "difference",
              "curve")
    if parts.get("matrix", {}).get("complete"):
        m = real.matrix(results)
        gains = m.rename(columns={"gain_mean": "mean", "gain_lo": "lo", "gain_hi": "hi"})
        table("Transfer − pretrained at 64 labels (points; rows: source)", gains, "source",
              "target", "matrix")
    if parts.get("decoder", {}).get("complete"):
        d = real.decoder(results)
        table("Film sentences: SmolLM2 and MiniLM", d.assign(arm=d["model"] + " " + d["arm"]),
              "labels", "arm", "decoder")
    return "\n".join(out)


def parse(argv: list[str]) -> argparse.Namespace:
    """Return the command line's parts and seeds."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real", description=__doc__
                                     .split("\n")[0])
    parser.add_argument("--part", action="append", choices=PARTS,
                        help="a part to run (again); repeat for several (default: all)")
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds (default {SEEDS})")
    parser.add_argument("--target", action="append", choices=DOMAINS,
                        help="matrix and selection: a target domain to run (again); repeat for "
                             "several (default: all); the others' stored cells are kept")
    parser.add_argument("--report", action="store_true",
                        help="print the stored results as markdown tables and stop")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    if args.report:
        sys.exit(print(report()))
    main(tuple(args.part or PARTS), args.seeds, targets=tuple(args.target or DOMAINS),
         command=" ".join(["python -m benchmarks.real", *sys.argv[1:]]))
