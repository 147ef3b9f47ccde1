"""Tasks from a user's CSV / TSV / JSON Lines file: formats, labels, splits and clear errors."""

import json

import pytest

from transfer_lab.data.files import read_rows
from transfer_lab.data.userdata import stratified_split, task_from_file

CSV = '''sentence,label
"a great film, truly",pos
"dull and
far too long",neg
lovely acting,pos
a waste of money,neg
superb score,pos
boring plot,neg
brilliant cast,pos
awful ending,neg
fine pacing,pos
weak script,neg
'''


def test_a_task_or_corpus_from_a_file_changes_no_registry(tmp_path):
    from transfer_lab.data import tasks
    from transfer_lab.data.userdata import corpus_from_file

    path = tmp_path / "mine.csv"
    path.write_text(CSV)
    registered, corpora = dict(tasks.TASKS), dict(tasks.CORPORA)
    task = task_from_file(path, text="sentence")
    corpus = corpus_from_file(path, text="sentence")
    assert registered == tasks.TASKS and corpora == tasks.CORPORA
    assert tasks.get_task(task) is task and tasks.get_corpus(corpus) is corpus  # as they are
    with pytest.raises(ValueError, match="unknown task 'mine'"):
        tasks.get_task("mine")
    with tasks.using(task, corpus):  # or by name, inside the block only
        assert tasks.get_task("mine") is task and tasks.get_corpus(corpus.name) is corpus
        assert registered == tasks.TASKS
    with pytest.raises(ValueError, match="unknown corpus 'unlabeled-mine'"):
        tasks.get_corpus(corpus.name)


def test_csv_with_quoted_multiline_fields_and_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(CSV)
    rows = read_rows(path)
    assert len(rows) == 10 and rows[1]["sentence"] == "dull and\nfar too long"
    task = task_from_file(path, text="sentence", label="label", name="my_reviews")
    assert task.classes == ("neg", "pos") and task.num_classes == 2
    train, test = task.load("train", task.size, 0), task.load("test")
    assert len(train) + len(test) == 10 and len(test) == 2
    assert set(test["label"]) == {0, 1}  # stratified: one of each class held out
    assert not set(train["text"]) & set(test["text"])


def test_tsv_and_jsonl_read_the_same_rows(tmp_path):
    rows = [{"text": f"text {i}", "y": i % 3} for i in range(12)]  # enough to hold 4 out
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "d.tsv").write_text("text\ty\n" + "".join(f"{r['text']}\t{r['y']}\n" for r in rows))
    a = task_from_file(tmp_path / "d.jsonl", label="y", name="a")
    b = task_from_file(tmp_path / "d.tsv", label="y", name="b")
    assert a.classes == b.classes == ("0", "1", "2")
    assert a.load("train", a.size, 0)["label"] == b.load("train", b.size, 0)["label"]


def test_eval_file_and_label_subsets_are_seeded_and_stratified(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "e.csv").write_text("sentence,label\nnice,pos\nbad,neg\n")
    task = task_from_file(tmp_path / "t.csv", "sentence", "label", eval_path=tmp_path / "e.csv",
                          name="with_eval")
    assert task.size == 10 and task.load("test")["text"] == ["nice", "bad"]
    four = task.load("train", 4, seed=1)
    assert sorted(four["label"]) == [0, 0, 1, 1]
    assert task.load("train", 4, seed=1)["text"] == four["text"]


def test_stratified_split_keeps_each_class():
    train, held = stratified_split([0] * 10 + [1] * 5, 0.2, seed=0)
    assert len(held) == 3 and len(train) == 12
    assert stratified_split([0] * 10 + [1] * 5, 0.2, seed=0) == (train, held)


@pytest.mark.parametrize("content, kwargs, message", [
    ("sentence,label\na,pos\n", dict(text="text"),
     "no column 'text'; columns found: sentence, label"),
    ("sentence,label\n", dict(text="sentence"), "has no rows"),
    ("sentence,label\n,pos\nok,neg\n", dict(text="sentence"), "row 1: the text '' is not"),
    ("sentence,label\na,\nb,neg\n", dict(text="sentence"), "row 1: label '' is missing"),
    ("sentence,label\n" + "".join(f"text {i},pos\n" for i in range(12)), dict(text="sentence"),
     "only one class"),
])
def test_bad_files_get_one_clear_error(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        task_from_file(path, **kwargs)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="use a .csv, .tsv or .jsonl file"):
        read_rows(tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="does not exist"):
        read_rows(tmp_path / "nope.csv")


def test_utf8_with_a_byte_order_mark_reads_like_plain_utf8(tmp_path):
    plain, marked = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_text(CSV, encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + CSV.encode("utf-8"))  # Excel's "CSV UTF-8"
    assert read_rows(marked) == read_rows(plain)
    assert list(read_rows(marked)[0]) == ["sentence", "label"]


def test_another_encoding_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé très bon,pos\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv is not utf-8 text.*UTF-8.*--encoding"):
        read_rows(path)
    assert read_rows(path, encoding="latin-1")[0]["text"] == "café très bon"
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        read_rows(path, encoding="klingon")


def test_a_file_too_small_to_hold_out_says_how_many_rows(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("text,label\ngood,pos\nbad,neg\n")
    with pytest.raises(ValueError, match=r"2 rows.*at least 10 rows.*--target-eval-file"):
        task_from_file(path)
    eval_path = tmp_path / "eval.csv"
    eval_path.write_text("text,label\nfine,pos\nawful,neg\n")
    task = task_from_file(path, eval_path=eval_path, name="two_with_eval")  # a test file: fine
    assert task.size == 2 and len(task.load("test")) == 2


def test_a_source_file_is_used_whole(tmp_path):
    path = tmp_path / "source.csv"
    path.write_text(CSV)
    task = task_from_file(path, text="sentence", name="a_source", held_out=0)
    assert task.size == 10 and len(task.load("train", 10)) == 10


def test_pretrain_source_trains_on_every_row_of_a_small_source(tmp_path, monkeypatch):
    import transfer_lab as tl

    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "small_source.csv"
    path.write_text(CSV)
    task = task_from_file(path, text="sentence", name="small_source", held_out=0)
    with tl.data.tasks.using(task):
        theta = tl.pretrain_source("small_source", model="tiny", config=tl.TrainConfig(
            max_steps=2, batch_size=4, progress=False))
    assert json.loads((theta / "theta_S.json").read_text())["examples"] == 10


# stray quotes: a review may open a " it never closes; a row must never swallow the next ones
STRAY = ['"Wow. The best film of the year', 'a "so-called" comedy', 'it ends with a quote"',
         'he said "go see it', 'plain and simple', '""twice"" quoted']


def test_a_tsv_with_stray_quotes_reads_every_line_as_a_row(tmp_path):
    path = tmp_path / "film.tsv"
    lines = [f"{STRAY[i % len(STRAY)]} ({i})\t{i % 2}" for i in range(1000)]
    path.write_text("text\tlabel\n" + "\n".join(lines) + "\n")
    rows = read_rows(path)
    assert len(rows) == 1000  # the number of data lines, none swallowed
    assert rows[0] == {"text": '"Wow. The best film of the year (0)', "label": "0"}
    assert rows[3]["text"] == 'he said "go see it (3)' and rows[999]["label"] == "1"
    assert [r["text"] for r in rows] == [line.split("\t")[0] for line in lines]  # as written
    task = task_from_file(path)
    assert task.classes == ("0", "1") and task.size == 800 and len(task.load("test", 200)) == 200
    assert task.description == ("your data: 1000 rows of film.tsv (800 train, 200 test; "
                                "classes 0, 1)")


def test_a_tsv_written_with_quoting_is_unquoted(tmp_path):
    path = tmp_path / "quoted.tsv"  # every field quoted, a " doubled; a line break in a field
    path.write_text('"text"\t"label"\n"a ""great"" film"\t"pos"\n"dull and\nlong"\t"neg"\n'
                    '"fine"\t"pos"\n')
    assert read_rows(path) == [{"text": 'a "great" film', "label": "pos"},
                               {"text": "dull and\nlong", "label": "neg"},
                               {"text": "fine", "label": "pos"}]


@pytest.mark.parametrize("content, message", [
    ("text\tlabel\na\tpos\nb\tc\tneg\n", r"line 3 has 3 fields where the header has 2: a tab"),
    ("text\tlabel\n\"a\tpos\nno label here\nb\tneg\n", r"line 3 has 1 fields.*fill in"),
])
def test_a_tsv_line_with_the_wrong_fields_is_refused_by_its_number(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_rows(path)


def test_a_csv_quoted_field_with_line_breaks_is_one_row(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"dull, and\nfar too long",neg\n"a ""great""\nfilm",pos\nok,pos\n')
    rows = read_rows(path)
    assert len(rows) == 3  # 5 data lines, 2 of them inside quoted fields
    assert rows[0] == {"text": "dull, and\nfar too long", "label": "neg"}
    assert rows[1]["text"] == 'a "great"\nfilm' and rows[2]["text"] == "ok"


@pytest.mark.parametrize("lines, message", [
    # a stray " opens a field that a stray " at a field's end closes: the rows between vanish
    (['nice film,pos', '"Wow, the best film,pos', 'dull,neg', 'fine,pos', 'it ends with"',
      'awful,neg'], (r"line 3 opens a quoted field that runs to line 6, swallowing rows: "
                     r"a stray \" in the text\? save the file as TSV")),
    (['nice film,pos', '"Wow the best film,pos', 'dull,neg', 'he said "no",neg'],
     r"line 3 opens a quoted field that runs to line 5, where it closes mid-text"),
    (['nice film,pos', '"Wow the best film,pos', 'dull,neg'],
     r"line 3 opens a quoted field that never closes"),
    (['"a "great" film",pos'], r"line 2: a \" inside a quoted field is not doubled"),
    (['a film, truly great,pos'], r"line 2 has 3 fields.*a comma inside a text\? quote the"),
])
def test_a_csv_whose_quotes_swallow_rows_is_refused_with_the_line(tmp_path, lines, message):
    path = tmp_path / "stray.csv"
    path.write_text("text,label\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        read_rows(path)


def test_label_words_name_numeric_labels_in_order(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(12)))
    task = task_from_file(path, label_words=("negative", "positive"))
    assert task.classes == ("negative", "positive")
    assert set(task.load("train", task.size)["label"]) == {0, 1}  # the ids stay the numbers
    assert task.description.endswith("labels 0 → negative, 1 → positive)")
    assert task_from_file(path).load("test", 3)["label"] == task.load("test", 3)["label"]
    for words in (("negative",), ("bad", "good", "fine"), ("same", "same")):
        with pytest.raises(ValueError, match=r"for the 2 classes of codes.csv \(0, 1\).*"
                                             r"--label-words negative,positive, label_words="):
            task_from_file(path, label_words=words)
