"""Tests of transfer_lab.models: MaskedTokensOnly trains a masked-LM as BertForMaskedLM does."""

import pytest
import torch

import transfer_lab as tl
from transfer_lab.data import world
from transfer_lab.models import MaskedTokensOnly
from transfer_lab.models.mlm import encode_mlm, mlm_collator


def _batch(n: int = 16) -> dict:
    """Return one masked batch of the world's corpus (seeded masking)."""
    tok = tl.load_tokenizer("tiny")
    data = encode_mlm(world.mlm_corpus(n, 0), tok, 32)
    return mlm_collator(tok, seed=0)([data[i] for i in range(n)])


def _loss_and_grads(model, batch) -> tuple[float, dict]:
    """Return the loss of one batch and the gradient of every weight of the masked-LM."""
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    inner = model.mlm if isinstance(model, MaskedTokensOnly) else model
    return loss.item(), {n: p.grad.clone() for n, p in inner.named_parameters()
                         if p.grad is not None}


def test_masked_tokens_only_has_the_same_loss_and_gradients():
    batch = _batch()
    assert 0 < (batch["labels"] != -100).sum() < batch["labels"].numel() / 2
    full = tl.build_model("tiny", "mlm", seed=0).eval()  # no dropout: the same forward pass
    sparse = MaskedTokensOnly(tl.build_model("tiny", "mlm", seed=0)).eval()
    loss_full, grads_full = _loss_and_grads(full, batch)
    loss_sparse, grads_sparse = _loss_and_grads(sparse, batch)
    assert abs(loss_full - loss_sparse) < 1e-5, (loss_full, loss_sparse)
    assert grads_full.keys() == grads_sparse.keys()
    for name, grad in grads_full.items():
        torch.testing.assert_close(grads_sparse[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_masked_tokens_only_scores_just_the_masked_tokens():
    batch = _batch()
    out = MaskedTokensOnly(tl.build_model("tiny", "mlm", seed=0))(**batch)
    masked = (batch["labels"] != -100).sum().item()
    assert out.logits.shape == (masked, len(tl.load_tokenizer("tiny")))


def test_masked_tokens_only_without_masked_tokens_gives_a_zero_loss():
    batch = _batch()
    batch["labels"] = torch.full_like(batch["labels"], -100)
    loss = MaskedTokensOnly(tl.build_model("tiny", "mlm", seed=0))(**batch).loss
    assert loss.item() == 0.0 and loss.requires_grad


def test_masked_tokens_only_needs_a_bert_head():
    with pytest.raises(TypeError, match="no BERT prediction head"):
        MaskedTokensOnly(tl.build_model("tiny", "classification", seed=0))
