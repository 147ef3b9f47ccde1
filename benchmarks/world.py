"""Is transfer in the synthetic world partial, as on real data? The targets of issue 19, measured.

    python -m benchmarks.world           # every part (about an hour on 2 cores)
    python -m benchmarks.world curve     # one part: curve, dapt or minilm

With the package's default recipes (`tl.compare`, the tiny model, supervised θ_S of product
reviews → film reviews, 5 seeds), it measures: transfer − scratch at 16 labels and transfer's
level there; transfer's rise from 16 to 1,024 labels; scratch's gap at 4,096 labels; the dapt
arm (a masked LM of the film corpus, then the product source from it) against the same recipe
from a masked LM of the world's general corpus, at 64 labels (for the tiny model both masked
LMs start from random, so the general one is the fair baseline: it isolates what the domain's
text adds); and on MiniLM (3 seeds, 64 labels) the pretrained arm's share of the gain over
scratch against what the product source adds. Each figure comes with its 95 % CI over seeds
(`Comparison.summary`, paired by seed for differences) and a pass/fail; the results go to
benchmarks/results/world.json, updated after each part.
"""

from __future__ import annotations

import json
import sys
import time

from .common import RESULTS, save

SEEDS, MINILM_SEEDS = 5, 3
BUDGETS = (16, 64, 1024, 4096)
# The default recipe is 30 epochs: 7,680 steps a run at 4,096 labels. The curve caps every run
# of both arms at CAP steps (it binds from 1,024 labels on), and runs 4,096 on fewer seeds.
CAP, SEEDS_AT = 1200, {4096: 3}
PARTS = ("curve", "dapt", "minilm")
GENERAL = "mlm_world_source"  # θ_S of product reviews trained from the world corpus's masked LM


def points(cell: dict) -> dict:
    """Return a summary or difference cell in accuracy points: mean and 95 % CI."""
    lo, hi = cell["ci95"]
    return {"mean": 100 * cell["mean"], "ci95": [100 * lo, 100 * hi]}


def level(comparison, arm: str) -> dict:
    """Return an arm's mean accuracy and its 95 % CI over seeds, in points."""
    return points(comparison.summary()[arm]["score"])


def paired(comparison, arm: str, baseline: str) -> dict:
    """Return `arm` − `baseline` paired by seed, in points (mean and 95 % CI)."""
    return points(comparison.differences(arm=arm)[f"{arm}-{baseline}"])


def runs(comparison) -> dict:
    """Return each arm's runs as seed, score and seconds (the full curves stay out)."""
    return {arm: [{k: r.get(k) for k in ("seed", "score", "seconds")} for r in rows]
            for arm, rows in comparison.arms.items()}


def curve(done: dict | None = None, keep=lambda part: None) -> dict:
    """Run scratch and transfer at each label budget with the default recipe; the budgets in
    `done` are kept, and `keep` is called with the part after each budget."""
    import transfer_lab as tl

    out = dict(done or {})
    for labels in BUDGETS:
        if str(labels) in out:
            continue
        config = tl.pipeline.target_config("tiny")
        if config.epochs * -(-labels // config.batch_size) > CAP:
            config = config.replace(max_steps=CAP, eval_every=0)
        c = tl.compare("film_sentiment", labels=labels, seeds=SEEDS_AT.get(labels, SEEDS),
                       arms=["scratch", "transfer"], config=config, progress=False)
        out[str(labels)] = {"scratch": level(c, "scratch"), "transfer": level(c, "transfer"),
                            "transfer-scratch": paired(c, "transfer", "scratch"),
                            "seconds": c.seconds, "runs": runs(c)}
        print(f"  {labels:>5} labels: scratch {fmt(out[str(labels)]['scratch'])}, transfer "
              f"{fmt(out[str(labels)]['transfer'])} ({c.seconds:.0f} s)", flush=True)
        keep(out)
    return out


def dapt() -> dict:
    """Compare the dapt arm (a masked LM of the film corpus, then the product source, then film
    labels) with the same recipe from a masked LM of the world's general corpus (what the
    domain's unlabeled text adds beyond masked-LM pretraining as such) and with its parts alone:
    the film masked LM fine-tuned (`mlm_film`) and θ_S from random (`transfer`)."""
    import transfer_lab as tl

    start = time.perf_counter()
    general = tl.pretrain_source("product_sentiment", "tiny", "supervised",
                                 theta=tl.pretrain_source("world", "tiny", "mlm"))
    film = tl.pretrain_source("film_reviews", "tiny", "mlm")  # the dapt arm's body, fine-tuned
    c = tl.compare("film_sentiment", labels=64, seeds=SEEDS, arms=["scratch", "transfer", "dapt"],
                   unlabeled="film_reviews", others={"mlm_film": film, GENERAL: general},
                   progress=False)
    return {arm: level(c, arm) for arm in c.arms} | {
        f"dapt-{GENERAL}": paired(c, "dapt", GENERAL),
        "dapt-transfer": paired(c, "dapt", "transfer"),
        "dapt-scratch": paired(c, "dapt", "scratch"),
        "dapt-mlm_film": paired(c, "dapt", "mlm_film"),
        "seconds": time.perf_counter() - start, "runs": runs(c)}


def minilm() -> dict:
    """Run MiniLM's default arms at 64 labels: how much is pretraining, how much the source."""
    import transfer_lab as tl

    start = time.perf_counter()
    c = tl.compare("film_sentiment", model="minilm", labels=64, seeds=MINILM_SEEDS,
                   progress=False)
    return {arm: level(c, arm) for arm in c.arms} | {
        "pretrained-scratch": paired(c, "pretrained", "scratch"),
        "transfer-pretrained": paired(c, "transfer", "pretrained"),
        "transfer-scratch": paired(c, "transfer", "scratch"),
        "seconds": time.perf_counter() - start, "runs": runs(c)}


def fmt(cell: dict) -> str:
    """Return a cell as 'mean [lo, hi]' in points."""
    lo, hi = cell["ci95"]
    return f"{cell['mean']:.1f} [{lo:.1f}, {hi:.1f}]"


def targets(parts: dict) -> list[dict]:
    """Return each target of issue 19 with its measured figure and whether it holds."""
    out = []

    def check(name: str, cell: dict, ok: bool) -> None:
        out.append({"target": name, "measured": cell, "pass": bool(ok)})

    if all(str(n) in parts.get("curve", {}) for n in BUDGETS):
        c = parts["curve"]
        check("16 labels: transfer − scratch >= 15 points", c["16"]["transfer-scratch"],
              c["16"]["transfer-scratch"]["mean"] >= 15)
        check("16 labels: transfer <= 85 %", c["16"]["transfer"], c["16"]["transfer"]["mean"] <= 85)
        rise = c["1024"]["transfer"]["mean"] - c["16"]["transfer"]["mean"]
        check("transfer at 1,024 >= transfer at 16 + 8 points",
              {"mean": rise, "ci95": None}, rise >= 8)
        gap = c["4096"]["transfer-scratch"]
        check("4,096 labels: scratch within 3 points of transfer", gap, abs(gap["mean"]) <= 3)
    if "dapt" in parts and f"dapt-{GENERAL}" in parts["dapt"]:
        d = parts["dapt"][f"dapt-{GENERAL}"]
        check("64 labels: dapt − (world corpus masked LM, then the source) >= 3 points", d,
              d["mean"] >= 3)
    if "minilm" in parts:
        m = parts["minilm"]
        pre, src = m["pretrained-scratch"], m["transfer-pretrained"]
        check("MiniLM, 64 labels: pretrained − scratch > transfer − pretrained (most of the gain)",
              {"pretrained-scratch": pre, "transfer-pretrained": src},
              pre["mean"] > src["mean"])
        check("MiniLM, 64 labels: transfer − pretrained > 0 (the source adds something)",
              src, src["mean"] > 0)
    return out


def main(parts: tuple[str, ...] = PARTS) -> dict:
    """Run the parts, print each target with its CI and pass/fail, and save world.json."""
    import transfer_lab as tl
    from transfer_lab.data import world

    tl.quiet()
    path = RESULTS / "world.json"
    done = json.loads(path.read_text()).get("parts", {}) if path.exists() else {}
    if done.get("own_share") != world.OWN_SHARE or done.get("fingerprint") != world.fingerprint():
        done = {}  # measured on another world: start over
    done |= {"own_share": world.OWN_SHARE, "fingerprint": world.fingerprint()}
    def keep(part: str, value: dict) -> None:
        done[part] = value
        found = {k: v for k, v in done.items() if k in PARTS}
        save("world", {"parts": done, "targets": targets(found)}, quiet=True)

    for part in parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        if part == "curve":  # budgets measured before are kept (a run cut short resumes)
            value = curve(done.get("curve"), lambda out: keep("curve", out))
            seconds = sum(cell.get("seconds") or 0 for cell in value.values())
        else:
            value, seconds = {"dapt": dapt, "minilm": minilm}[part](), None
        done[f"{part}_seconds"] = seconds or time.perf_counter() - start
        keep(part, value)
    found = {k: v for k, v in done.items() if k in PARTS}
    result = targets(found)
    for t in result:
        cell = t["measured"]
        text = (fmt(cell) if cell.get("ci95") else
                "; ".join(f"{k} {fmt(v)}" for k, v in cell.items()) if "mean" not in cell
                else f"{cell['mean']:.1f}")
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {text}")
    seconds = sum(v for k, v in done.items() if k.endswith("_seconds"))
    print(f"seconds: {seconds:.0f}")
    save("world", {"parts": done, "targets": result, "seconds": seconds})
    return {"parts": done, "targets": result}


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or PARTS)
