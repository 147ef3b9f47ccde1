"""Smoke test of the throughput benchmark on tiny sizes: each arm runs and trains alike."""

import pytest
import torch

import transfer_lab as tl
from benchmarks import throughput
from transfer_lab.lab import real as lab_real


def test_fit_trainer_and_bare_loop_train_on_the_same_batches(monkeypatch):
    build = tl.build_model

    def without_dropout(*args, **kwargs):  # the arms draw dropout masks differently
        net = build(*args, **kwargs)
        for module in net.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        return net

    monkeypatch.setattr(tl, "build_model", without_dropout)
    tok, data = throughput._data("tiny", 3 * 8)
    runs = {arm: throughput.train_arm(arm, "tiny", 3, 8, tok, data) for arm in throughput.ARMS}
    first = {arm: r["first_loss"] for arm, r in runs.items()}
    # the same weights on the same first batch: the same loss, to float32 rounding
    assert max(first.values()) - min(first.values()) < 1e-5, first
    # and after two optimizer steps: the same order, schedule, clipping and AdamW in every arm
    final = {arm: r["final_loss"] for arm, r in runs.items()}
    assert max(final.values()) - min(final.values()) < 1e-5, final
    assert all(r["seconds"] > 0 and r["examples_per_s"] > 0 for r in runs.values()), runs


def test_mlm_step_benchmark_times_both_heads():
    ms = throughput.mlm_step_ms(steps=2, batch=8, rounds=1)
    assert set(ms) == {"all_tokens", "masked_only"} and all(v > 0 for v in ms.values())


def test_book_benchmark_reads_peak_memory_and_slow_cells_from_a_kernel(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from benchmarks import book

    parent = b"\x01" * (600 << 20)  # this process holds 600 MiB when it starts the kernel
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = b"1" * (50 << 20)'),
                                         nbformat.v4.new_code_cell(book.PEAK)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    peak = float(nb.cells[-1].outputs[0]["text"])
    assert 50 < peak < 500, peak  # the kernel's 50 MiB and Python, not its parent's 600 MiB
    del parent
    slow = book.slowest_cells(nb, top=1)
    assert len(slow) == 1 and slow[0]["seconds"] >= 0 and slow[0]["cell"] in (0, 1)


def test_book_benchmark_runs_chapters_side_by_side_and_the_appendix_last(tmp_path, monkeypatch):
    import json

    import nbformat

    from benchmarks import book, common

    monkeypatch.setattr(book, "BOOK", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    saved = tmp_path / "results" / "book.json"
    cells = {"01_a": "x = 1",  # each notebook leaves a note of what it saw
             "02_b": f"import os; open({str(tmp_path / 'threads')!r}, 'w')"
                     ".write(os.environ['OMP_NUM_THREADS'])",
             "03_c": "x = 3",
             "appendix_z": f"import json; open({str(tmp_path / 'seen')!r}, 'w').write("
                           f"str(len(json.load(open({str(saved)!r}))['notebooks'])))"}
    for name, code in cells.items():
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]),
                       tmp_path / f"{name}.ipynb")
    result = book.main(jobs=2)
    rows = {r["notebook"]: r for r in result["notebooks"]}
    assert list(rows) == [f"{name}.ipynb" for name in cells]  # reading order
    assert all(r["ok"] for r in rows.values()) and {r["lane"] for r in rows.values()} <= {0, 1}
    assert (tmp_path / "threads").read_text() == str(result["threads_per_kernel"])
    assert (tmp_path / "seen").read_text() == "3"  # the appendix read all three chapters' rows
    ends = [r["start"] + r["seconds"] for n, r in rows.items() if n != "appendix_z.ipynb"]
    assert rows["appendix_z.ipynb"]["start"] >= max(ends)
    assert json.loads(saved.read_text())["notebooks"] == result["notebooks"]
    assert result["notebook_seconds"] == sum(r["seconds"] for r in rows.values())


def test_book_benchmark_splits_the_chapters_evenly_each_share_in_reading_order(tmp_path,
                                                                               monkeypatch):
    import json

    from benchmarks import book, common

    monkeypatch.setattr(book, "BOOK", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    chapters = [tmp_path / f"{name}.ipynb" for name in ("01_a", "02_b", "03_c", "04_d", "05_new")]
    # nothing measured yet: all alike, dealt out in turn
    assert [[p.stem for p in lane] for lane in book.lanes(chapters, 2)] == [
        ["01_a", "03_c", "05_new"], ["02_b", "04_d"]]
    (tmp_path / "results").mkdir()
    last = {"01_a": 9.0, "02_b": 5.0, "03_c": 4.0, "04_d": 2.0}  # 05_new: the mean, 5 s
    (tmp_path / "results" / "book.json").write_text(json.dumps(
        {"notebooks": [{"notebook": f"{n}.ipynb", "seconds": s} for n, s in last.items()]}))
    split = [[p.stem for p in lane] for lane in book.lanes(chapters, 2)]
    assert split == [["01_a", "03_c"], ["02_b", "04_d", "05_new"]]  # 13 s and 12 s
    assert book.lanes(chapters[:1], 4) == [chapters[:1]]  # no empty kernels




@pytest.mark.slow
def test_real_benchmark_saves_a_part_as_strict_json_with_its_cis(tmp_path, monkeypatch):
    import json

    from benchmarks import common, real
    from transfer_lab import pipeline

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(real, "RESULTS", tmp_path)
    monkeypatch.setattr(real, "BUDGETS", (4,))
    monkeypatch.setattr(real, "CURVE_ARMS", ["bow", "pretrained"])
    monkeypatch.setattr(real, "TEST", 8)
    monkeypatch.setattr(real, "CONFIG", tl.TrainConfig(lr=1e-4, batch_size=4, max_steps=2,
                                                       eval_every=0))
    # no source training: θ_S is MiniLM's own body (the arms here do not read it)
    pretrained = pipeline.pretrain_source(model="minilm", init="pretrained")
    monkeypatch.setattr(pipeline, "pretrain_source", lambda *a, **k: pretrained)
    real.main(("curve",), seeds=2, command="test")

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    saved = json.loads((tmp_path / "real.json").read_text(), parse_constant=refuse)
    assert saved["benchmark"] == "real" and saved["command"] == "test" and saved["date"]
    assert {"cores", "torch_threads", "torch"} <= set(saved["machine"])
    part = saved["parts"]["curve"]
    assert part["complete"] and part["seeds"] == 2 and part["seconds"] > 0
    cell = part["results"]["4"]
    assert cell["labels"] == 4 and cell["seeds"] == 2 and cell["test_examples"] == 8
    assert set(cell["summary"]) == {"bow", "pretrained"} and cell["paired"] == {}
    for arm, runs in cell["runs"].items():
        assert [r["seed"] for r in runs] == [0, 1], arm
        assert all(set(r) == {"seed", "score", "seconds"} for r in runs)
        score = cell["summary"][arm]["score"]
        assert score["mean"] == sum(r["score"] for r in runs) / 2  # the runs it summarizes
        lo, hi = score["ci95"]
        assert lo <= score["mean"] <= hi
    assert "curve" not in json.dumps(cell["runs"])  # training curves stay out
    assert "/" not in cell["theta_S"]  # a name in the θ cache, not this machine's path
    results = lab_real.load(tmp_path / "real.json")  # as the chapters read it
    table = lab_real.curve(results)
    assert set(table["arm"]) == {"bow", "pretrained"} and set(table["labels"]) == {4}
    bow = table.set_index("arm").loc["bow"]
    assert bow["mean"] == cell["summary"]["bow"]["score"]["mean"] and bow["lo"] <= bow["hi"]
    assert lab_real.provenance(results, "curve").startswith("python -m benchmarks.real --part "
                                                            "curve (")
    assert "seeds: 2; test sentences: 8;" in lab_real.provenance(results, "curve")
    with pytest.raises(ValueError, match="no 'matrix' part.*--part matrix"):
        lab_real.matrix(results)


def test_real_results_refuse_a_missing_file_or_a_cut_short_part(tmp_path):
    import json

    with pytest.raises(ValueError, match="python -m benchmarks.real"):
        lab_real.load(tmp_path / "real.json")
    (tmp_path / "real.json").write_text(json.dumps({"parts": {"matrix": {"complete": False}}}))
    with pytest.raises(ValueError, match="cut-short 'matrix' part.*--part matrix"):
        lab_real.matrix(lab_real.load(tmp_path / "real.json"))


def test_real_tables_pair_each_source_with_its_target():
    def cell(mean, lo=None, hi=None):
        return {"mean": mean, "ci95": [lo, hi]}

    def target(pretrained, sources):
        return {"test_examples": 8,
                "summary": {"pretrained": {"score": cell(pretrained)}}
                | {f"from_{s}": {"score": cell(v)} for s, v in sources.items()},
                "paired": {f"from_{s}-pretrained": cell(v - pretrained, -0.1, 0.2)
                           for s, v in sources.items()},
                "bow_source": {f"from_{s}": {"mean": 0.7} for s in sources}}

    part = {"complete": True, "seeds": 3, "seconds": 60.0, "results": {
        "film": target(0.8, {"product": 0.85, "restaurant": 0.75}),
        "product": target(0.9, {"film": 0.88})}}
    selection = {"complete": True, "seeds": 3, "seconds": 1.0, "results": {
        "film": {"pretrained": {"logme": [0.1, 0.3]},
                 "from_product": {"logme": [0.5, 0.7], "overlap": 0.4},
                 "from_restaurant": {"logme": [0.0, 0.0], "overlap": 0.3}}}}
    results = {"date": "d", "machine": {"cores": 2},
               "parts": {"matrix": part, "selection": selection}}
    m = lab_real.matrix(results).set_index(["source", "target"])
    assert m.loc[("product", "film"), "gain_mean"] == pytest.approx(0.05)
    assert m.loc[("restaurant", "film"), "transfer"] == 0.75
    assert m.loc[("film", "product"), "pretrained"] == 0.9 and len(m) == 3
    s = lab_real.selection(results).set_index("start")
    assert s.loc["product", "logme"] == pytest.approx(0.6) and s.loc["product", "accuracy"] == 0.85
    assert s.loc["pretrained", "accuracy"] == 0.8
    assert s["overlap"].isna().tolist() == [True, False, False]  # no source, no overlap
    assert lab_real.provenance(results, "matrix") == (
        "python -m benchmarks.real --part matrix (d; seeds: 3; test sentences: 8; 1 min of runs; "
        "cores: 2)")


def _generation_results() -> dict:
    """Return a generation.json as `python -m benchmarks.generation` writes it, in small."""
    from benchmarks import generation
    from transfer_lab.results import Comparison

    rows = {arm: [{"seed": s, "score": b + s, "bleu": b + s, "chrf": 2 * b + s, "seconds": 1.0,
                   "hypotheses": [f"{arm} {i}" for i in range(20)]} for s in range(3)]
            for arm, b in (("zero_shot", 0.0), ("pretrained", 40.0))}
    c = Comparison("opus_books_en_fr", "toy_translation", "smollm2", "pretrained", 1000, 3,
                   rows, "/somewhere/smollm2", {}, 5.0, 100, "generation")
    runs = [{"lr": lr, "epochs": [{"epoch": e, "bleu": lr * 1e3 * e} for e in (1, 2)]}
            for lr in (2e-3, 5e-3)]
    cell = {"bleu": 1.0, "chrf": 2.0, "exact_match": 0.0, "seconds": 3.0, "shown": []}
    part = {"command": "python -m benchmarks.generation --part translation", "date": "d",
            "seeds": 3, "seconds": 120.0}
    return {"machine": {"cores": 2}, "parts": {
        "recipe": part | {"results": {"toy_translation": {
            "runs": runs, "metric": "bleu", "chosen": {"lr": 5e-3, "epochs": 2}}}},
        "translation": part | {"results": generation.table(c) | {"decodings": {
            "LoRA/greedy": cell, "LoRA/beam 4": cell | {"bleu": 2.0}}}}}}


def test_generation_results_come_back_as_the_comparison_that_was_run():
    import json

    from benchmarks import generation
    from transfer_lab.lab import generation_results as gen

    results = json.loads(json.dumps(_generation_results()))  # through JSON, as stored
    c = gen.comparison(results, "translation")
    assert c.family == "generation" and c.seeds == 3 and c.test_examples == 100
    assert c.mean_std("pretrained", "bleu")[0] == pytest.approx(41.0)
    assert c.differences("bleu")["pretrained-zero_shot"]["mean"] == pytest.approx(40.0)
    assert c.arms["pretrained"][0]["hypotheses"] == [f"pretrained {i}" for i in
                                                   range(generation.SHOWN)]
    assert c.arms["pretrained"][0]["chrf"] == 80.0
    frame = gen.recipe(results, "toy_translation")
    assert len(frame) == 4 and frame["bleu"].max() == pytest.approx(10.0)
    assert gen.chosen(results, "toy_translation") == {"lr": 5e-3, "epochs": 2}
    assert list(gen.decodings(results)["decoding"]) == ["greedy", "beam 4"]
    assert gen.provenance(results, "translation") == (
        "python -m benchmarks.generation --part translation (d; seeds: 3; test rows: 100; "
        "2 min; cores: 2)")


def test_generation_results_name_the_command_of_a_missing_part(tmp_path):
    from transfer_lab.lab import generation_results as gen

    with pytest.raises(ValueError, match="python -m benchmarks.generation"):
        gen.load(tmp_path / "generation.json")
    with pytest.raises(ValueError, match="--part qa"):
        gen.comparison(_generation_results(), "qa")


def test_stored_results_come_from_the_repository_else_the_cache(tmp_path, monkeypatch):
    from transfer_lab.lab import stored

    assert stored.path("real.json") == stored.REPOSITORY / "real.json"
    monkeypatch.setattr(stored, "REPOSITORY", tmp_path / "not-installed")  # as on Colab
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="offline: not fetched.*python -m benchmarks.world"):
        stored.load("world.json")
    cached = stored.cache_dir() / "results" / "world.json"
    cached.parent.mkdir(parents=True)
    cached.write_text('{"parts": {}}')
    assert stored.load("world.json") == {"parts": {}}
