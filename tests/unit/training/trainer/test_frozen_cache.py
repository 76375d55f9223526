"""``cache_frozen_layers``: the frozen layers run once per text, their output is cached on disk and reused.

The model has no dropout here, so a cached run (frozen layers in eval mode) and an uncached one (train mode)
compute the same thing, and must end with the same weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file
from tiny_models import build_model_dir
from trainer_recipes import add_mask_token, make_recipe

from xalign.training.models.bert_split import bottom_states, top_states
from xalign.training.recipes.base import RecipeError
from xalign.training.trainer.build import build_run
from xalign.training.trainer.distributed import DistContext
from xalign.training.trainer.frozen_cache import StateCache
from xalign.training.trainer.frozen_states import frozen_weights_sha256, tokenizer_sha256
from xalign.training.trainer.loop import Loop, train


def run_and_cache(recipe_dir: Path, model: Path, output: str, **changes: object) -> tuple[Path, int, Path]:
    """Train 3 steps; (checkpoint, texts computed into the cache by this run, the cache folder)."""
    recipe = make_recipe(model, recipe_dir / output, "en_x", train_top_layers=1, steps=3, **changes)
    run = build_run(recipe, DistContext())
    result = Loop(run).run(progress=False)
    assert result.checkpoint is not None and run.frozen is not None
    return result.checkpoint, run.frozen.cache.stored, run.frozen.cache.folder


def test_the_split_model_computes_what_the_whole_model_does(still_model: Path) -> None:
    model = transformers.AutoModel.from_pretrained(str(still_model)).eval()
    ids = torch.randint(4, 80, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:], mask[2, 2:] = 0, 0
    with torch.no_grad():
        whole = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        bottom = bottom_states(model, ids, mask, 1)
        torch.testing.assert_close(bottom, whole.hidden_states[1])
        torch.testing.assert_close(top_states(model, bottom, mask, 1), whole.last_hidden_state)
        alone = bottom_states(model, ids[1:2, :5], mask[1:2, :5], 1)  # the sentence without its padding
    torch.testing.assert_close(alone[0], bottom[1, :5], rtol=0, atol=1e-6)


def test_a_cached_run_ends_with_the_weights_of_an_uncached_one(still_model: Path, tmp_path: Path) -> None:
    plain = train(make_recipe(still_model, tmp_path / "plain", "en_x", train_top_layers=1, steps=3), progress=False)
    cached, stored, folder = run_and_cache(tmp_path, still_model, "cached", cache_frozen_layers=True,
                                           frozen_cache_dir=str(tmp_path / "cache"))  # fmt: skip
    assert stored > 0 and folder.parent == tmp_path / "cache"
    assert plain.checkpoint is not None
    a, b = load_file(str(plain.checkpoint / "model.safetensors")), load_file(str(cached / "model.safetensors"))
    assert not torch.equal(a["encoder.layer.1.output.dense.weight"], load_file(str(still_model / "model.safetensors"))[
        "encoder.layer.1.output.dense.weight"])  # fmt: skip
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=2e-6, msg=key)


def test_a_second_run_reads_the_cache_and_other_models_or_data_get_their_own(still_model: Path, tmp_path: Path) -> None:
    cache = {"cache_frozen_layers": True, "frozen_cache_dir": str(tmp_path / "cache")}
    first, stored, folder = run_and_cache(tmp_path, still_model, "first", **cache)
    shards = sorted(folder.glob("shard-*.npy"))
    second, again, same_folder = run_and_cache(tmp_path, still_model, "second", **cache)
    assert (stored, again, same_folder) == (len(StateCache(folder, 32)), 0, folder)
    assert sorted(folder.glob("shard-*.npy")) == shards  # nothing computed, nothing written
    for key, value in load_file(str(first / "model.safetensors")).items():
        assert torch.equal(value, load_file(str(second / "model.safetensors"))[key]), key
    other_model = add_mask_token(build_model_dir(tmp_path / "other", seed=1))
    _, computed, other_folder = run_and_cache(tmp_path, other_model, "other-model", **cache)
    assert other_folder != folder and computed > 0
    other_data = [{"kind": "multi30k", "path": "multi30k", "split": "train", "langs": ["en", "de"]}]
    _, computed, data_folder = run_and_cache(tmp_path, still_model, "other-data", data=other_data, **cache)
    assert data_folder not in (folder, other_folder) and computed > 0


def test_the_store_keeps_variable_length_entries_and_ignores_unfinished_shards(tmp_path: Path) -> None:
    store = StateCache(tmp_path, hidden=4, flush_every=2)
    arrays = {f"k{i}": np.full((i + 1, 4), i, dtype=np.float32) for i in range(3)}
    for key, value in arrays.items():
        store.put(key, value)
    (tmp_path / "shard-unfinished.npy").write_bytes(b"partial")  # a shard without an index
    assert len(list(tmp_path.glob("shard-*.json"))) == 1  # two entries flushed, one pending
    store.flush()
    reread = StateCache(tmp_path, hidden=4)
    assert len(reread) == 3 and reread.stored == 0
    for key, value in arrays.items():
        np.testing.assert_array_equal(reread.get(key), value)
    with pytest.raises(ValueError, match="width 8"):
        StateCache(tmp_path, hidden=8)


def test_the_recipe_refuses_a_cache_without_frozen_layers(still_model: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cache_frozen_layers: needs train_top_layers"):
        make_recipe(still_model, tmp_path / "run", "en_x", cache_frozen_layers=True)


def test_the_cache_key_ignores_what_saving_and_calling_leave_behind(still_model: Path) -> None:
    """A trainer checkpoint keeps its base's bottom but carries provenance in its config and, for XLM-R-style
    tokenizers, the last call's truncation in tokenizer.json: neither may send it to another cache folder."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(still_model))
    fresh = tokenizer_sha256(tokenizer)
    tokenizer(["hello world"], truncation=True, max_length=5, padding="max_length")
    assert "max_length" in tokenizer.backend_tokenizer.to_str()  # the call did leave its state behind
    assert tokenizer_sha256(tokenizer) == fresh
    model = transformers.AutoModel.from_pretrained(str(still_model))
    before = frozen_weights_sha256(model, 1)
    model.config.transformers_version, model.config.architectures = "0.0.1", ["SomethingElse"]
    assert frozen_weights_sha256(model, 1) == before
    model.config.layer_norm_eps = 1e-3  # what the layers compute: another key
    assert frozen_weights_sha256(model, 1) != before
