"""The Backpack LM: shapes, causality, the sense-weighted sum, alpha, the loss, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_backpack import DIM, SENSES, build_backpack_dir, tiny_config

from xalign.training.models.backpack import (
    Backpack,
    BackpackConfig,
    allowed_pairs,
    lm_loss,
    load_backpack,
    save_backpack,
)
from xalign.training.models.backpack_tokenizer import load_tokenizer

VOCAB = 50


def random_model(seed: int = 0, n_layer: int = 2) -> Backpack:
    torch.manual_seed(seed)
    model = Backpack(tiny_config(VOCAB, n_layer=n_layer))
    # Sharper alpha than the N(0, 0.02) start, so context visibly matters in the causality checks.
    with torch.no_grad():
        for parameter in model.sense_weights.parameters():
            parameter.normal_(0.0, 0.5)
    return model.eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts, (2, 7): the second has 4 real tokens and 3 pads."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB, (2, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    ids[1, 4:] = 0
    return ids, mask


def test_shapes() -> None:
    ids, mask = padded_batch()
    out = random_model()(ids, mask)
    assert out.logits.shape == (2, 7, VOCAB)
    assert out.contextual.shape == (2, 7, DIM)
    assert out.senses.shape == (2, 7, SENSES, DIM)
    assert out.alpha.shape == (2, SENSES, 7, 7)


@pytest.mark.parametrize("position", [1, 3, 6])
def test_changing_a_later_token_never_changes_earlier_outputs(position: int) -> None:
    model = random_model()
    ids = torch.randint(4, VOCAB, (1, 7), generator=torch.Generator().manual_seed(2))
    changed = ids.clone()
    changed[0, position] = (ids[0, position] + 1 - 4) % (VOCAB - 4) + 4
    with torch.no_grad():
        before, after = model(ids), model(changed)
    for name in ("logits", "contextual", "senses"):
        old, new = getattr(before, name)[:, :position], getattr(after, name)[:, :position]
        assert torch.equal(old, new), name
        # The change does show up at the changed position: the comparison above can fail.
        assert not torch.allclose(getattr(before, name)[:, position], getattr(after, name)[:, position]), name
    assert torch.equal(before.alpha[:, :, :position], after.alpha[:, :, :position])
    assert not torch.allclose(before.alpha[:, :, position], after.alpha[:, :, position])


def test_output_is_the_explicit_double_sum_over_positions_and_senses() -> None:
    ids, mask = padded_batch()
    model = random_model(n_layer=1)
    out = model(ids, mask)
    for b in range(2):
        for i in range(7):
            expected = torch.zeros(DIM)
            for j in range(7):
                for sense in range(SENSES):
                    expected += out.alpha[b, sense, i, j] * out.senses[b, j, sense]
            torch.testing.assert_close(out.contextual[b, i], expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out.logits[b, i], expected @ model.embed.weight.T, rtol=1e-5, atol=1e-6)


def test_alpha_sums_to_one_over_allowed_positions_and_is_zero_elsewhere() -> None:
    ids, mask = padded_batch()
    alpha = random_model()(ids, mask).alpha  # (batch, k, seq, seq)
    allowed = allowed_pairs(mask).expand_as(alpha)  # j <= i and j real
    assert torch.all(alpha[~allowed] == 0)
    assert torch.all(alpha[allowed] > 0)
    torch.testing.assert_close(alpha.sum(dim=-1), torch.ones(2, SENSES, 7))
    assert torch.all(alpha[1, :, :, 4:] == 0)  # padded keys of the second text


def test_a_row_with_no_real_token_is_zero_not_nan() -> None:
    ids = torch.tensor([[5, 6], [0, 0]])
    mask = torch.tensor([[1, 1], [0, 0]])
    out = random_model()(ids, mask)
    assert torch.isfinite(out.logits).all()
    assert torch.all(out.alpha[1] == 0)


def test_senses_depend_on_the_word_only() -> None:
    model = random_model()
    out = model(torch.tensor([[7, 8, 9], [10, 11, 9]]))
    torch.testing.assert_close(out.senses[0, 2], out.senses[1, 2])
    torch.testing.assert_close(out.senses[0, 2], model.senses(torch.tensor(9)))


def test_padding_changes_nothing_for_real_tokens() -> None:
    model = random_model()
    ids, mask = padded_batch()
    batched = model(ids, mask)
    alone = model(ids[1:, :4], mask[1:, :4])
    torch.testing.assert_close(batched.logits[1, :4], alone.logits[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.alpha[1, :, :4, :4], alone.alpha[0], rtol=1e-5, atol=1e-6)


def test_loss_ignores_padding() -> None:
    model = random_model()
    ids, mask = padded_batch()
    logits = model(ids, mask).logits
    other_pads = ids.clone()
    other_pads[1, 4:] = 9
    loss = lm_loss(logits, ids, mask)
    assert torch.equal(loss, lm_loss(model(other_pads, mask).logits, other_pads, mask))
    targets = [(b, i) for b in range(2) for i in range(6) if mask[b, i + 1]]
    manual = torch.stack([torch.nn.functional.cross_entropy(logits[b, i], ids[b, i + 1]) for b, i in targets]).mean()
    torch.testing.assert_close(loss, manual)


def test_loss_falls_when_training_a_few_steps() -> None:
    torch.manual_seed(0)
    model = Backpack(tiny_config(VOCAB)).train()
    ids, mask = padded_batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = lm_loss(model(ids, mask).logits, ids, mask)
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_too_long_input_is_refused() -> None:
    model = random_model()
    with pytest.raises(ValueError, match="positions"):
        model(torch.zeros(1, model.config.max_positions + 1, dtype=torch.long))


def test_config_validates_and_round_trips() -> None:
    config = BackpackConfig(vocab_size=100, n_embd=32, n_senses=4, n_head=2)
    assert config.sense_hidden == 128
    assert BackpackConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="divide"):
        BackpackConfig(vocab_size=100, n_embd=30, n_senses=4)
    with pytest.raises(ValueError, match="unknown"):
        BackpackConfig.from_json('{"vocab_size": 10, "colour": 1}')


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    folder = build_backpack_dir(tmp_path / "ckpt", seed=3)
    assert sorted(p.name for p in folder.iterdir()) == ["backpack_config.json", "model.safetensors", "tokenizer.json"]
    model = load_backpack(folder)
    assert not model.training
    copy = load_backpack(save_backpack(model, load_tokenizer(folder / "tokenizer.json"), tmp_path / "copy"))
    ids = torch.tensor([[2, 40, 41, 42]])
    torch.testing.assert_close(model(ids).logits, copy(ids).logits, rtol=0, atol=0)
    torch.manual_seed(3)
    assert torch.equal(Backpack(model.config).embed.weight, model.embed.weight)  # the seed decides the weights
