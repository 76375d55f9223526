"""``grad_cache_chunk``: gradient caching gives the gradients of the plain large batch, a chunk at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from trainer_recipes import make_recipe

from xalign.training.objectives.grad_cache import grad_cache_step
from xalign.training.recipes.base import RecipeError
from xalign.training.trainer import loop
from xalign.training.trainer.build import build_run
from xalign.training.trainer.distributed import DistContext
from xalign.training.trainer.loop import Loop


def micro_step_gradients(model: Path, output: Path, mix: str, **changes: object) -> dict[str, torch.Tensor]:
    """The parameter gradients of the first micro-step of a run with batch 12."""
    run = build_run(make_recipe(model, output, mix, batch_size=12, **changes), DistContext())
    loss, _ = Loop(run)._micro_step(0)
    assert torch.isfinite(loss)
    return {name: p.grad.clone() for name, p in run.module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mix", ["en_x", "multiway", "en_x_distill"])
def test_chunked_gradients_equal_the_whole_batch(
    mix: str, still_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = micro_step_gradients(still_model, tmp_path / "whole", mix)
    chunk_counts: list[int] = []

    def counted(chunks: int, *args: Any, **kwargs: Any) -> Any:
        chunk_counts.append(chunks)
        return grad_cache_step(chunks, *args, **kwargs)

    monkeypatch.setattr(loop, "grad_cache_step", counted)
    chunked = micro_step_gradients(still_model, tmp_path / "chunked", mix, grad_cache_chunk=5)
    assert len(chunk_counts) == 1 and chunk_counts[0] >= 3  # 12 rows: 24 texts or more, 5 at a time
    assert set(whole) == set(chunked) and len(whole) > 10
    assert any(grad.abs().max() > 1e-4 for grad in whole.values())
    for name, grad in whole.items():
        torch.testing.assert_close(chunked[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_dropout_is_replayed_between_the_two_passes() -> None:
    layer = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    inputs = torch.randn(6, 4)
    seen: list[torch.Tensor] = []

    def embed(index: int) -> torch.Tensor:
        out: torch.Tensor = layer(inputs[index * 3 : index * 3 + 3])
        seen.append(out.detach())
        return out

    torch.manual_seed(0)
    grad_cache_step(2, embed, lambda e: ((e**2).sum(), {}), lambda _: torch.enable_grad())
    torch.testing.assert_close(seen[0], seen[2])
    torch.testing.assert_close(seen[1], seen[3])
    assert not torch.equal(seen[0], seen[1])


def test_the_recipe_refuses_losses_of_token_states(still_model: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"grad_cache_chunk: works only .* not representation_translation"):
        make_recipe(still_model, tmp_path / "run", "dap", grad_cache_chunk=4)
