"""The causal_lm family (a prompted decoder LLM, LoRA on the answer token): SmolLM2's tokenizer
with a tiny random Llama, the CLI's refusal of a masked-LM θ_S for a decoder, and one slow
end-to-end comparison with the real SmolLM2-135M-Instruct."""

import pytest
import torch
from datasets import Dataset
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from transformers import AutoModelForCausalLM

import transfer_lab as tl
from transfer_lab import cli
from transfer_lab.data.tasks import Task
from transfer_lab.families import prompting
from transfer_lab.families.causal import INSTRUCTION, CausalLM
from transfer_lab.models import smollm2

HEADER = "<|im_start|>assistant\n"  # where a chat prompt ends
CUE = "\nSentiment:"  # where a completion prompt (the default) ends
CONFIG = CausalLM().target_config("smollm2")
REVIEWS = ["a wonderful film , i loved it .", "dull and far too long .",
           "the cast was superb , but the plot was weak .", "never boring and very moving ."]


@pytest.fixture(scope="module")
def tokenizer(smollm2_tokenizer):
    return smollm2_tokenizer


@pytest.fixture(scope="module")
def theta(tiny_llama_theta):
    return tiny_llama_theta


@pytest.fixture()
def family():
    return CausalLM()


@pytest.fixture()
def task():
    return tl.get_task("film_sentiment")


def rows(texts=REVIEWS, labels=(1, 0, 0, 1)):
    return Dataset.from_dict({"text": list(texts), "label": list(labels)})


def test_film_sentiment_on_smollm2_is_the_causal_family():
    family = tl.pipeline.family_of("film_sentiment", "smollm2")
    assert family.name == "causal_lm" and family.arms == ("bow", "zero_shot", "few_shot",
                                                              "transfer")
    assert family.init == "pretrained" and family.metric == "accuracy"


@pytest.mark.parametrize("template", ["completion", "chat"])
def test_encode_trains_on_the_answer_token_only(template, task, tokenizer):
    family = CausalLM(template=template)
    encoded = family.encode(rows(), tokenizer, task, max_length=128)
    answers = family.answers(tokenizer, task.classes)
    for example, label, text in zip(encoded, (1, 0, 0, 1), REVIEWS, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        assert len(ids) == len(labels) == len(example["attention_mask"])
        assert ids[-1] == labels[-1] == answers[label]
        assert labels[:-1] == [-100] * (len(ids) - 1)
        if template == "chat":
            prompt, end = prompting.chat_prompt(tokenizer, INSTRUCTION, text), HEADER
        else:
            prompt, end = f"Review: {text}\nSentiment:", f"{CUE} "
        assert ids[:-1] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids).endswith(f"{end}{task.classes[label]}")


def test_the_default_prompt_is_the_plain_completion(family, task, tokenizer):
    assert family.template == "completion"
    assert family.prompts(tokenizer, ["dull ."], [("superb .", "positive")]) == [
        "Review: superb .\nSentiment: positive\n\nReview: dull .\nSentiment:"]
    chat = CausalLM(template="chat").answers(tokenizer, task.classes)
    assert family.answers(tokenizer, task.classes) != chat  # " positive" is not "positive"
    with pytest.raises(ValueError, match="prompt template"):
        CausalLM(template="chatml")


def test_other_label_words_are_named_in_the_question(family, tokenizer):
    task = Task("tickets", "classification", ("business", "science", "other"), "tickets", rows)
    question = ("Which of these labels fits the text: business, science, other? "
                "Answer with one word.")
    assert family.instruction_for(task.classes) == question
    assert family.instruction_for(("positive", "negative")) == INSTRUCTION
    assert CausalLM(instruction="Spam?").instruction_for(task.classes) == "Spam?"
    example = family.encode(rows(REVIEWS[:1], [1]), tokenizer, task, max_length=128)[0]
    assert "business, science, other?" in tokenizer.decode(example["input_ids"])


def test_encode_cuts_the_middle_of_a_long_prompt(task, tokenizer):
    family = CausalLM(template="chat")
    long = "the plot was " + "very " * 200 + "boring ."
    example = family.encode(rows([long], [0]), tokenizer, task, max_length=64)[0]
    assert len(example["input_ids"]) == 64 and example["labels"][-1] != -100
    text = tokenizer.decode(example["input_ids"])
    assert text.startswith("<|im_start|>system")  # the template's start is kept
    assert text.endswith(f"boring .\n{INSTRUCTION}<|im_end|>\n{HEADER}negative")  # and its end


def test_collator_packs_the_shared_start_once_and_keeps_the_answers(task, tokenizer):
    family = CausalLM(template="chat")  # its system message is the start every prompt shares
    encoded = family.encode(rows(REVIEWS[:2], [1, 0]), tokenizer, task, max_length=128)
    ids = [list(x) for x in encoded["input_ids"]]
    shared = prompting.shared_prefix(ids)
    assert tokenizer.decode(ids[0][:shared]).startswith("<|im_start|>system")  # the template's
    batch = family.collator(tokenizer)([encoded[0], encoded[1]])
    assert batch["input_ids"].tolist() == [ids[0] + ids[1][shared:]]  # the start once, no pads
    assert batch["position_ids"].tolist() == [list(range(len(ids[0])))
                                              + list(range(shared, len(ids[1])))]
    answers = family.answers(tokenizer, task.classes)
    assert batch["labels"].tolist() == [[-100, answers[1], -100, answers[0]]]
    kept = batch["logits_to_keep"].tolist()
    assert batch["input_ids"][0, kept[1::2]].tolist() == [answers[1], answers[0]]
    assert kept[0::2] == [k - 1 for k in kept[1::2]]  # the positions that predict the answers
    mask = batch["attention_mask"][0, 0] == 0  # 0: may attend
    second = len(ids[0])  # the first token of the second review's rest
    assert mask[second, :shared].all() and not mask[second, shared:second].any()


def test_collator_refuses_labels_before_the_answer(family, tokenizer):
    with pytest.raises(ValueError, match="last token only"):
        family.collator(tokenizer)([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])


def test_the_loss_is_the_answer_tokens_cross_entropy(family, task, tokenizer):
    model = smollm2.tiny_llama(tokenizer)
    encoded = family.encode(rows(REVIEWS[:3], [1, 0, 0]), tokenizer, task, max_length=128)
    batch = family.collator(tokenizer)([encoded[i] for i in range(3)])
    answers = family.answers(tokenizer, task.classes)
    loss = model(**batch).loss
    packed = torch.autograd.grad(loss, list(model.parameters()))
    picked = []
    for example, label in zip(encoded, (1, 0, 0), strict=True):  # each alone, unpadded
        logits = model(input_ids=torch.tensor([example["input_ids"]])).logits
        picked.append(-logits[0, -2].log_softmax(-1)[answers[label]])
    alone = torch.stack(picked).mean()
    assert torch.allclose(loss, alone, atol=1e-4)
    for mine, theirs in zip(packed, torch.autograd.grad(alone, list(model.parameters())),
                            strict=True):  # the same gradient: the packing is exact
        assert torch.allclose(mine, theirs, atol=1e-5)


def test_fit_trains_the_tiny_model_on_the_answers(family, task, tokenizer, theta):
    net = family.build("smollm2", task, theta, seed=0)
    train = family.encode(task.load("train", 16, seed=0), tokenizer, task, max_length=128)
    config = family.target_config("smollm2").replace(epochs=3, progress=False)
    history = tl.fit(net, train, config=config, collate_fn=family.collator(tokenizer))
    losses = [step["loss"] for step in history.steps]
    assert len(losses) == 6 and losses[-1] < losses[0]


def test_evaluation_returns_accuracy_and_macro_f1(family, task, tokenizer):
    gold = (1, 0, 0, 0)  # unbalanced, so that answering one class always is not 0.5 either way
    model = smollm2.tiny_llama(tokenizer)
    metrics = family.evaluation(rows(labels=gold), tokenizer, task, CONFIG)(model)
    assert set(metrics) >= {"accuracy", "macro_f1"}
    # recomputed by hand: the label word with the higher next-token logit after each prompt
    answers = family.answers(tokenizer, task.classes)
    predicted = []
    with torch.no_grad():
        for example in family.encode(rows(labels=gold), tokenizer, task, max_length=128):
            prompt = torch.tensor([example["input_ids"][:-1]])  # all but the answer token
            predicted.append(model(input_ids=prompt).logits[0, -1, answers].argmax().item())
    expected = {"accuracy": accuracy_score(gold, predicted),
                "macro_f1": f1_score(gold, predicted, average="macro", zero_division=0)}
    assert {k: metrics[k] for k in expected} == pytest.approx(expected), (metrics, predicted)


def test_calibration_centres_each_label_on_the_reference_texts(family, task, tokenizer,
                                                                 monkeypatch):
    labels = [1, 0, 0, 1]

    def biased(model, tok, prompts, token_ids, **kwargs):
        """'positive' always wins, by 1 more on positive reviews; then the reference rows."""
        n = len(prompts)
        positive = torch.tensor([2.0 + label for label in labels] + [2.5] * (n - len(labels)))
        return torch.stack([torch.zeros(n), positive], dim=1)

    monkeypatch.setattr(prompting, "score_labels", biased)
    config = CONFIG
    plain = family.evaluation(rows(), tokenizer, task, config)(None)
    assert plain["accuracy"] == 0.5 and plain["macro_f1"] < 0.5  # one class always
    assert plain["answer_share"] == 1.0 and "uncalibrated_accuracy" not in plain
    calibrated = family.evaluation(rows(), tokenizer, task, config, calibration=REVIEWS)(None)
    assert calibrated["accuracy"] == 1.0 and calibrated["answer_share"] == 0.5
    assert calibrated["uncalibrated_accuracy"] == 0.5
    assert calibrated["uncalibrated_answer_share"] == 1.0


@pytest.mark.parametrize("arm", ["bow", "zero_shot", "few_shot"])
def test_prompt_arms_on_the_tiny_model(family, task, tokenizer, theta, arm):
    train = task.load("train", 16, seed=0)
    test = task.load("test", 8)
    metrics = family.baseline(arm, "smollm2", task, theta, train, test, tokenizer,
                              CONFIG, seed=0)
    assert {"accuracy", "macro_f1", "seconds"} <= set(metrics) and metrics["seconds"] > 0
    if arm == "bow":  # recomputed: sklearn's TF-IDF + logistic regression at the C it chose
        bow = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                            LogisticRegression(C=metrics["C"], max_iter=2_000, random_state=0))
        predicted = bow.fit(train["text"], train["label"]).predict(test["text"])
        expected = accuracy_score(test["label"], predicted)
    else:  # the prompt arm's evaluation of θ itself, loaded here
        net = AutoModelForCausalLM.from_pretrained(str(theta))
        evaluate = family.prompt_evaluation(arm, task, train, test, tokenizer, CONFIG, seed=0)
        expected = evaluate(net)["accuracy"]
    assert metrics["accuracy"] == pytest.approx(expected)


def test_few_shot_prompts_hold_the_examples_and_calibrate_on_the_other_texts(
        family, task, tokenizer, theta, monkeypatch):
    seen = {}

    def spy(model, tok, prompts, token_ids, **kwargs):
        seen["prompts"] = prompts
        return torch.zeros(len(prompts), len(token_ids))

    monkeypatch.setattr(prompting, "score_labels", spy)
    train = task.load("train", 16, seed=3)
    test = task.load("test", 5)
    family.baseline("few_shot", "smollm2", task, theta, train, test, tokenizer,
                    CONFIG, seed=3)
    shown = prompting.few_shot_examples(train["text"], train["label"], 4, 3, task.classes)
    others = [text for text in train["text"] if text not in {t for t, _ in shown}]
    prompts = seen["prompts"]
    assert len(prompts) == 5 + len(others) and len(others) >= 10  # test, then texts not shown
    assert all(prompt.count(CUE) == 5 for prompt in prompts)
    assert all(text in prompts[0] for text, _ in shown)
    questions = [p.rsplit("Review: ", 1)[1] for p in prompts[5:]]
    assert not any(q.startswith(text + "\n") for q in questions for text, _ in shown)


def test_shots_and_calibration_are_options(task, tokenizer, theta, monkeypatch):
    seen = []
    monkeypatch.setattr(prompting, "score_labels", lambda model, tok, prompts, ids, **kwargs:
                        seen.append(prompts) or torch.zeros(len(prompts), len(ids)))
    train, test = task.load("train", 16, seed=0), task.load("test", 3)
    for family in (CausalLM(shots=1, calibration_texts=5), CausalLM(shots=2, calibrate=False)):
        family.prompt_evaluation("few_shot", task, train, test, tokenizer, CONFIG, 0)(None)
    assert len(seen[0]) == 3 + 5 and seen[0][0].count(CUE) == 2
    assert len(seen[1]) == 3 and seen[1][0].count(CUE) == 3
    assert CausalLM(calibrate=False).seed_free == ("zero_shot",) and CausalLM().seed_free == ()


def test_unknown_arm_is_refused(family, task, tokenizer, theta):
    with pytest.raises(ValueError, match="unknown arm 'ten_shot'.*bow, zero_shot, few_shot"):
        family.baseline("ten_shot", "smollm2", task, theta, rows(), rows(), tokenizer,
                        CONFIG, seed=0)


@pytest.mark.parametrize("labels, message", [
    (("Positively", "negative"), r"'Positively' is not one token.*single-token label words"),
    (("positive", "positive"), "share a token; choose distinct words"),
])
def test_bad_label_words_are_refused(family, tokenizer, theta, labels, message):
    bad = Task("bad_labels", "classification", labels, "label words the LLM cannot answer",
               lambda split, n, seed: rows())
    with pytest.raises(ValueError, match=message):
        family.encode(rows(), tokenizer, bad, max_length=64)
    with pytest.raises(ValueError, match=message):
        family.evaluation(rows(), tokenizer, bad, CONFIG)
    with pytest.raises(ValueError, match=message):
        family.build("smollm2", bad, theta)  # before any weights are loaded
    with pytest.raises(ValueError, match=message):
        family.baseline("zero_shot", "smollm2", bad, theta, rows(), rows(), tokenizer,
                        CONFIG, seed=0)


def test_build_puts_lora_on_the_attention(family, task, tokenizer, theta):
    net = family.build("smollm2", task, theta, seed=0)
    counts = smollm2.trainable_parameters(net)
    names = {n.split(".")[-4] for n, p in net.named_parameters() if p.requires_grad}
    assert names == set(family.targets) and counts["percent"] < 100
    assert not hasattr(family.unwrap(net), "merge_and_unload")  # merged into a plain model
    full = CausalLM(lora_r=None).build("smollm2", task, theta, seed=0)
    assert smollm2.trainable_parameters(full)["percent"] == 100


def test_masked_lm_theta_for_a_decoder_is_one_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "--model", "smollm2", "--init", "mlm", "--seeds", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("transfer-lab: error: model 'smollm2' is a decoder LLM")
    assert "--init pretrained" in err[0]
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_smollm2_compare_end_to_end():
    config = tl.pipeline.target_config("smollm2").replace(epochs=1)
    result = tl.compare("film_sentiment", model="smollm2", labels=8, seeds=1,
                        test_examples=24, config=config, progress=False)
    # no source task: the LoRA-tuned pretrained LLM is the `pretrained` arm, not `transfer`
    assert list(result.arms) == ["bow", "zero_shot", "few_shot", "pretrained"]
    assert result.family == "causal_lm" and result.test_examples == 24
    scores = {arm: runs[0]["accuracy"] for arm, runs in result.arms.items()}
    assert all(0 <= s <= 1 for s in scores.values()), scores
    assert scores["zero_shot"] >= 0.6, scores  # measured 0.76–0.83 on 100 validation reviews
    assert "zero_shot" in result.table() and "pretrained" in result.table()


@pytest.mark.parametrize("classes", [("0", "1"), ("A", "B"), ("12", "-3")])
def test_classes_that_are_not_words_are_refused_with_the_fix(family, tokenizer, theta, classes):
    codes = Task("codes", "classification", classes, "labels a file often has",
                 lambda split, n, seed: rows())
    message = (r"prompt arms \(zero_shot, few_shot\) and a decoder LLM answer with the classes' "
               r"names, and .* are not words .* --label-words negative,positive "
               r"\(task_from_file\(\.\.\., label_words=")
    for call in (lambda: family.build("smollm2", codes, theta),  # before any weights are loaded
                 lambda: family.encode(rows(), tokenizer, codes, max_length=64),
                 lambda: family.evaluation(rows(), tokenizer, codes, CONFIG),
                 lambda: family.baseline("zero_shot", "smollm2", codes, theta, rows(), rows(),
                                         tokenizer, CONFIG, seed=0),
                 lambda: family.baseline("few_shot", "smollm2", codes, theta, rows(), rows(),
                                         tokenizer, CONFIG, seed=0)):
        with pytest.raises(ValueError, match=message):
            call()
    assert family.baseline("bow", "smollm2", codes, theta, rows(), rows(), tokenizer, CONFIG,
                           seed=0)["accuracy"] >= 0  # bag-of-words needs no label words


def test_a_file_with_label_words_is_answered_in_words(family, tokenizer, tmp_path):
    from transfer_lab.data.userdata import task_from_file

    path = tmp_path / "codes.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{REVIEWS[i % 4]}\t{(1, 0, 0, 1)[i % 4]}\n"
                                             for i in range(12)))
    task = task_from_file(path, label_words=("negative", "positive"))
    encoded = family.encode(task.load("train", 4, seed=0), tokenizer, task, max_length=128)
    answers = family.answers(tokenizer, ("negative", "positive"))
    assert sorted(x["labels"][-1] for x in encoded) == sorted(answers * 2)
    assert tokenizer.decode(encoded[0]["input_ids"]).endswith(
        f"{CUE} {('negative', 'positive')[task.load('train', 4, seed=0)['label'][0]]}")
    assert family.instruction_for(task.classes) == INSTRUCTION  # the sentiment question
