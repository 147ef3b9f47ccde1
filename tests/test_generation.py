"""The generation family (text answers by a decoder LLM): SmolLM2's tokenizer with a tiny random
Llama. The loss reads the answer tokens only, decoding is repeatable and padding-free, the
metrics are sacrebleu's and SQuAD's, and bad input gets one clear error or a warning."""

import warnings

import pytest
import sacrebleu
import torch
from datasets import Dataset

import transfer_lab as tl
from transfer_lab import cli
from transfer_lab.families.generation import (
    DECODINGS,
    GREEDY,
    Decoding,
    Generation,
    GenerativeQA,
    answer_ids,
    decoding_named,
    encode_answers,
    generate,
)
from transfer_lab.models import smollm2
from transfer_lab.validate import InputError

CONFIG = Generation().target_config("smollm2").replace(progress=False)
PAIRS = [("the plot was dull .", "zura budahi"), ("a delightful film .", "kepopo tiraka"),
         ("i saw a good drama in paris .", "nine misi sosobu buvo mihi sife"),
         ("the score is messy .", "pate lofe")]


@pytest.fixture(scope="module")
def tokenizer(smollm2_tokenizer):
    return smollm2_tokenizer


@pytest.fixture(scope="module")
def theta(tiny_llama_theta):
    return tiny_llama_theta


@pytest.fixture()
def model(tokenizer):
    return smollm2.tiny_llama(tokenizer)


@pytest.fixture()
def task():
    return tl.get_task("toy_translation")


def pairs(rows=PAIRS):
    return Dataset.from_dict({"source": [s for s, _ in rows], "target": [t for _, t in rows]})


def prompts(task, n=None):
    return Generation().prompts(task, [s for s, _ in PAIRS[:n]])


# --- the family in the pipeline -----------------------------------------------------------

def test_text_tasks_on_smollm2_are_the_generation_families():
    family = tl.pipeline.family_of("toy_translation", "smollm2")
    assert family.name == "generation" and family.metric == "bleu"
    # no source task: the LoRA-tuned pretrained LLM is the `pretrained` arm; no bow for text
    assert family.default_arms("smollm2", family.init) == ["zero_shot", "few_shot", "pretrained"]
    assert tl.pipeline.family_of("qa_orgs", "smollm2").name == "generative_qa"
    assert tl.pipeline.family_of("toy_translation", "tiny").name == "seq2seq"  # encoders keep it


def test_prompt_and_answer_are_plain_text(task, tokenizer):
    family = Generation()
    assert family.prompts(task, ["the plot was dull ."]) == ["English: the plot was dull .\nToy:"]
    shown = family.prompts(task, ["x ."], [("a film .", "tiraka")])[0]
    assert shown == "English: a film .\nToy: tiraka\n\nEnglish: x .\nToy:"
    ids = answer_ids(tokenizer, "zura budahi")
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[:-1]) == " zura budahi"
    assert Generation(fields=("Source", "Target"), header="Translate.").prompts(task, ["x"]) == [
        "Translate.\n\nSource: x\nTarget:"]


# --- supervised fine-tuning: the loss reads the answer tokens only ------------------------

def test_encode_labels_the_answer_and_its_eos_only(task, tokenizer):
    encoded = Generation().encode(pairs(), tokenizer, task, max_length=128)
    for example, (source, target) in zip(encoded, PAIRS, strict=True):
        prompt = tokenizer(f"English: {source}\nToy:", add_special_tokens=False)["input_ids"]
        answer = answer_ids(tokenizer, target)
        assert example["input_ids"] == prompt + answer
        assert example["labels"] == [-100] * len(prompt) + answer
        assert example["attention_mask"] == [1] * (len(prompt) + len(answer))


def test_the_loss_is_the_mean_cross_entropy_of_the_answer_tokens(task, tokenizer, model):
    family = Generation()
    encoded = family.encode(pairs(), tokenizer, task, max_length=128)
    loss = model(**family.collator(tokenizer)([encoded[i] for i in range(4)])).loss
    losses = []  # each example alone, unpadded: -log p(answer token | what came before it)
    for example in encoded:
        logits = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
        labels = torch.tensor(example["labels"])
        answer = (labels != -100).nonzero().squeeze(1)
        losses.append(-logits[answer - 1].log_softmax(-1)[range(len(answer)), labels[answer]])
    by_hand = torch.cat(losses)
    assert loss.item() == pytest.approx(by_hand.mean().item(), abs=1e-5)


def test_no_gradient_reaches_the_logits_of_prompt_tokens(task, tokenizer, model):
    family = Generation()
    encoded = family.encode(pairs(), tokenizer, task, max_length=128)
    batch = family.collator(tokenizer)([encoded[i] for i in range(4)])
    kept = {}

    def retain(module, inputs, output):
        output.retain_grad()
        kept["logits"] = output

    model.lm_head.register_forward_hook(retain)
    model(**batch).loss.backward()
    width, keep = batch["input_ids"].shape[1], batch["logits_to_keep"]
    assert keep < width  # the LM head skipped the prompt positions before the earliest answer
    moved = kept["logits"].grad.abs().sum(-1) > 0  # (examples, kept positions)
    for i, example in enumerate(encoded):
        labels = example["labels"] + [-100] * (width - len(example["labels"]))
        # position p predicts token p + 1: a gradient exactly where that token is an answer's
        expected = [labels[p + 1] != -100 if p + 1 < width else False
                    for p in range(width - keep, width)]
        assert moved[i].tolist() == expected


def test_collator_refuses_rows_without_a_prompt_or_an_answer(tokenizer):
    collate = Generation().collator(tokenizer)
    with pytest.raises(InputError, match="a prompt and an answer"):
        collate([{"input_ids": [1, 2], "attention_mask": [1, 1], "labels": [-100, -100]}])
    with pytest.raises(InputError, match="a prompt and an answer"):
        collate([{"input_ids": [1, 2], "attention_mask": [1, 1], "labels": [1, 2]}])


def test_a_long_pair_is_cut_with_a_warning(task, tokenizer):
    long_source = " ".join(["the plot was dull ."] * 40)
    with pytest.warns(UserWarning, match="1 of 2 training pairs were longer than 32 tokens"):
        encoded = encode_answers(tokenizer, prompts(task, 1) + [f"English: {long_source}\nToy:"],
                                 ["zura budahi"] * 2, max_length=32)
    short, cut = encoded
    assert len(cut["input_ids"]) == 32 and cut["input_ids"][-3:] == short["input_ids"][-3:]
    assert cut["labels"][-3:] == short["labels"][-3:]  # the whole answer and its EOS are kept


def test_fine_tuning_teaches_the_answers_and_where_they_stop(task, tokenizer, theta):
    family = Generation(lora_r=None)  # every weight: the tiny model learns 4 pairs by heart
    net = family.build("smollm2", task, theta, seed=0)
    train = family.encode(pairs(), tokenizer, task, max_length=64)
    config = CONFIG.replace(lr=1e-2, epochs=50, batch_size=4, warmup_ratio=0.0,
                            group_by_length=False)
    history = tl.fit(net, train, config=config, collate_fn=family.collator(tokenizer))
    assert history.steps[-1]["loss"] < history.steps[0]["loss"] / 20
    metrics = family.evaluation(pairs(), tokenizer, task, CONFIG)(net)
    assert metrics["hypotheses"] == [t for _, t in PAIRS]  # written whole, then EOS: it stopped
    assert metrics["bleu"] == pytest.approx(100) and metrics["exact_match"] == 100


def test_build_puts_lora_on_attention_and_mlp(task, theta):
    net = Generation().build("smollm2", task, theta, seed=0)
    names = {n.split(".")[-4] for n, p in net.named_parameters() if p.requires_grad}
    assert names == set(Generation().targets)
    assert not hasattr(Generation().unwrap(net), "merge_and_unload")


# --- decoding -------------------------------------------------------------------------------

def greedy_by_hand(model, tokenizer, prompt, max_new_tokens):
    """Return the first line of the argmax continuation, one token at a time, no cache."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax().item()
            if token == tokenizer.eos_token_id:
                break
            new.append(token)
    return " ".join(tokenizer.decode(new).split("\n")[0].split())


def test_greedy_is_the_argmax_token_by_token_and_padding_changes_nothing(task, tokenizer, model):
    texts = prompts(task)
    decoding = Decoding(max_new_tokens=8)
    batched = generate(model, tokenizer, texts, decoding, batch_size=4)
    assert batched == [greedy_by_hand(model, tokenizer, p, 8) for p in texts]
    beams = Decoding(num_beams=3, max_new_tokens=8)
    assert generate(model, tokenizer, texts, beams, batch_size=4) == [
        generate(model, tokenizer, [p], beams)[0] for p in texts]  # left padding is invisible
    assert Decoding(num_beams=1).kwargs() == GREEDY.kwargs() == {"do_sample": False,
                                                                  "num_beams": 1}


def test_sampling_is_repeatable_under_a_seed(task, tokenizer, model):
    texts = prompts(task)
    sampling = Decoding(sample=True, temperature=1.0, top_p=1.0, seed=1, max_new_tokens=8)
    state = torch.get_rng_state()
    first = generate(model, tokenizer, texts, sampling)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    assert generate(model, tokenizer, texts, sampling) == first
    other = generate(model, tokenizer, texts, Decoding(**{**sampling.__dict__, "seed": 2}))
    assert other != first
    assert first != generate(model, tokenizer, texts, Decoding(max_new_tokens=8))
    # with top_p near 0 only the likeliest token survives: sampling is greedy
    narrow = Decoding(sample=True, top_p=1e-6, seed=3, max_new_tokens=8)
    assert generate(model, tokenizer, texts, narrow) == generate(
        model, tokenizer, texts, Decoding(max_new_tokens=8))


def test_the_family_seeds_sampling_with_the_run(task, tokenizer, model):
    family = Generation(decoding="sample")
    assert family.decoding == DECODINGS["sample"] and family.seed_free == ()
    assert Generation().seed_free == ("zero_shot",)
    runs = [family.evaluation(pairs(), tokenizer, task, CONFIG.replace(seed=s))(model)
            ["hypotheses"] for s in (0, 0, 1)]
    assert runs[0] == runs[1] != runs[2]


@pytest.mark.parametrize("settings, message", [
    ({"num_beams": 0}, "num_beams must be a whole number"),
    ({"num_beams": 4, "sample": True}, "beam search .* or sampling"),
    ({"sample": True, "temperature": 0}, "temperature must be above 0"),
    ({"top_p": 1.5}, r"top_p must lie in \(0, 1\]"),
    ({"max_new_tokens": 0}, "max_new_tokens must be at least 1"),
])
def test_bad_decoding_settings_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        Decoding(**settings)


def test_decodings_by_name():
    assert decoding_named("beam").name == "beam 4"
    assert decoding_named("sample").name == "sampling T=0.7 p=0.9"
    assert decoding_named(GREEDY) is GREEDY
    with pytest.raises(InputError, match="unknown decoding 'beams'; choose one of: greedy, beam"):
        Generation(decoding="beams")
    with pytest.raises(InputError, match="has no option 'beams'"):
        Generation().with_options(beams=4)
    assert Generation().with_options(decoding="beam").decoding.num_beams == 4


def test_max_new_tokens_follow_the_longest_reference(task, tokenizer, model, monkeypatch):
    from transfer_lab.families import generation

    seen = []
    monkeypatch.setattr(generation, "generate", lambda model, tok, prompts, decoding, **kw:
                        seen.append(decoding) or [""] * len(prompts))
    Generation().evaluation(pairs(), tokenizer, task, CONFIG.replace(seed=4))(model)
    longest = max(len(answer_ids(tokenizer, t)) for _, t in PAIRS)
    assert seen[0].max_new_tokens == int(1.5 * longest) + 2 and seen[0].seed == 4


def test_a_prompt_longer_than_the_context_is_cut_with_a_warning(task, tokenizer, model):
    long = "English: " + " ".join(["the plot was dull ."] * 120) + "\nToy:"  # ≈ 720 tokens
    assert len(tokenizer(long)["input_ids"]) > model.config.max_position_embeddings
    with pytest.warns(UserWarning, match="1 of 2 prompts were longer than 504 tokens"):
        out = generate(model, tokenizer, [long, prompts(task, 1)[0]], Decoding(max_new_tokens=8))
    assert len(out) == 2 and all(isinstance(text, str) for text in out)
    with pytest.raises(InputError, match="the text of row 1 of the prompts is empty"):
        generate(model, tokenizer, ["English: x\nToy:", ""])


# --- metrics and arms ---------------------------------------------------------------------

def test_translation_metrics_are_sacrebleus():
    hypotheses = ["zura budahi", "kepopo", "nine misi sosobu buvo mihi"]
    references = [["zura budahi"], ["kepopo tiraka"], ["nine misi sosobu buvo mihi sife"]]
    metrics = Generation().score(hypotheses, references)
    flat = [[r[0] for r in references]]
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, flat).score)
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, flat).score)
    assert metrics["exact_match"] == pytest.approx(100 / 3)


def test_qa_metrics_are_squads():
    metrics = GenerativeQA().score(["The Dana.", "globex", "the last winter"],
                                   [["dana"], ["initech"], ["last winter", "winter"]])
    # exact after SQuAD's normalisation: 2 of 3; F1: 1, 0, 1
    assert metrics == pytest.approx({"exact_match": 200 / 3, "f1": 200 / 3})


def test_qa_prompts_hold_the_context_and_the_question(tokenizer):
    task = tl.get_task("qa_orgs")
    rows = task.load("train", 2, seed=0)
    family = GenerativeQA()
    prompt = family.prompts(task, family.inputs(rows))[0]
    assert prompt == f"Context: {rows[0]['context']}\nQuestion: {rows[0]['question']}\nAnswer:"
    encoded = family.encode(rows, tokenizer, task, max_length=128)
    answer = [x for x in encoded[0]["labels"] if x != -100]
    assert answer == answer_ids(tokenizer, rows[0]["answers"]["text"][0])


@pytest.mark.parametrize("arm", ["zero_shot", "few_shot"])
def test_prompt_arms_on_the_tiny_model(task, tokenizer, theta, model, arm):
    train, test = task.load("train", 8, seed=0), task.load("test", 4)
    family = Generation(shots=2)
    metrics = family.baseline(arm, "smollm2", task, theta, train, test, tokenizer, CONFIG, 0)
    examples = family.shown(train, 0) if arm == "few_shot" else []
    expected = family.evaluation(test, tokenizer, task, CONFIG, examples)(model)
    assert metrics["hypotheses"] == expected["hypotheses"] and metrics["seconds"] > 0
    assert metrics["bleu"] == pytest.approx(expected["bleu"])
    if arm == "few_shot":  # two distinct seeded training pairs, another two for another seed
        pool = set(zip(train["source"], train["target"], strict=True))
        assert len(set(examples)) == 2 and set(examples) <= pool
        assert family.shown(train, 1) != examples


def test_bow_and_unknown_arms_are_refused(task, tokenizer, theta):
    for arm in ("bow", "ten_shot"):
        with pytest.raises(InputError, match=f"unknown arm '{arm}'.*zero_shot, few_shot"):
            Generation().baseline(arm, "smollm2", task, theta, pairs(), pairs(), tokenizer,
                                  CONFIG, 0)


@pytest.mark.parametrize("column, row", [("target", 2), ("source", 1)])
def test_an_empty_text_is_one_clear_error(task, tokenizer, column, row):
    bad = [list(p) for p in PAIRS]
    bad[row][0 if column == "source" else 1] = "  "
    rows = pairs([tuple(p) for p in bad])
    with pytest.raises(InputError, match=f"row {row} of 'toy_translation' \\(test\\).* is empty"):
        Generation().evaluation(rows, tokenizer, task, CONFIG)
    with pytest.raises(InputError, match=f"row {row} .*'toy_translation' \\(train\\)"):
        Generation().encode(rows, tokenizer, task, max_length=64)


def test_a_question_without_a_gold_answer_is_one_clear_error(tokenizer):
    task = tl.get_task("qa_orgs")
    rows = task.load("test", 3).to_list()
    rows[1]["answers"] = {"text": [], "answer_start": []}
    with pytest.raises(InputError, match="row 1 of 'qa_orgs' \\(test\\) has no gold answer"):
        GenerativeQA().evaluation(Dataset.from_list(rows), tokenizer, task, CONFIG)
    rows[1]["answers"], rows[2]["question"] = {"text": ["dana"], "answer_start": [0]}, ""
    with pytest.raises(InputError, match="row 2 of 'qa_orgs' \\(test\\), column 'question'"):
        GenerativeQA().evaluation(Dataset.from_list(rows), tokenizer, task, CONFIG)


def test_compare_runs_the_arms_on_the_tiny_model(theta):
    config = CONFIG.replace(epochs=1, batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about on ordinary rows
        result = tl.compare("toy_translation", model="smollm2", theta_S=theta, labels=8,
                            seeds=1, test_examples=4, config=config, progress=False)
    assert list(result.arms) == ["zero_shot", "few_shot", "pretrained"]
    assert result.family == "generation" and "BLEU" in result.table()
    for runs in result.arms.values():
        assert len(runs[0]["hypotheses"]) == 4 and runs[0]["score"] == runs[0]["bleu"]


def test_the_cli_refuses_bow_for_translation_in_one_line(capsys, tmp_path):
    code = cli.main(["run", "--model", "smollm2", "--target", "toy_translation", "--arms",
                        "bow", "--seeds", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert code == 2, err
    assert err.startswith("transfer-lab: error: unknown arm 'bow' for the generation family")
