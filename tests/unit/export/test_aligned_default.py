"""The aligned default: a tiny base and a delta trained on it, published, gated and promoted like `make model`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_models import MAX_LEN, build_model_dir
from trainer_recipes import make_recipe

from xalign.export.aligned import DefaultResult, GateError, gate_numbers, publish_default
from xalign.export.cli import main
from xalign.export.config import Evaluation
from xalign.export.default_model import default_config
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.evaluation import Evaluate, measure
from xalign.modelstore import ModelStore
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.layout import ALIAS_HISTORY_FILE
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.refs import parse_ref
from xalign.training.delta import extract_delta
from xalign.training.trainer.loop import train

REPO = Path(__file__).resolve().parents[3]
TATOEBA_MINI = REPO / "tests" / "data" / "tatoeba_mini"
BUCC_MINI = REPO / "tests" / "data" / "bucc_mini"
NAME = "xalign-e5-small"


@pytest.fixture(scope="module")
def base_and_delta(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny base and the delta of a 2-step run that trains its top layer."""
    root = tmp_path_factory.mktemp("aligned")
    base = build_model_dir(root / "base", seed=0)
    recipe = make_recipe(base, root / "run", "en_x", train_top_layers=1, steps=2)
    checkpoint = train(recipe, progress=False, recipe_file="top.toml").checkpoint
    assert checkpoint is not None
    extract_delta(checkpoint, base, root / "delta", evaluation={"tatoeba": {"mean": 7.5}})
    return base, root / "delta"


def _config(base: Path, store: Path) -> ExportConfig:
    config = default_config(store, store / "cache", base_dir=base, tatoeba_dir=TATOEBA_MINI, bucc_dir=BUCC_MINI)
    # The tiny model has 64 positions; the mini data has one Tatoeba language; fp32 alone keeps the test short.
    return replace(config, max_seq_length=MAX_LEN, tatoeba_langs=("deu",), variants=("fp32",))


@pytest.fixture(scope="module")
def base_store(base_and_delta: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the tiny base published as version 1, measured on Tatoeba and BUCC. Copy it to change it."""
    store = tmp_path_factory.mktemp("base-store") / "store"
    assert publish_default(_config(base_and_delta[0], store)).base.version == 1
    return store


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    """A private copy of ``base_store``."""
    return Path(shutil.copytree(base_store, tmp_path / "store"))


def _forced(store: Path, tatoeba: Mapping[str, float], f1: float) -> Evaluate:
    """An evaluation giving the base's recorded numbers plus fixed offsets (per Tatoeba key, and BUCC F1)."""
    base = ModelStore(store).manifest(parse_ref(f"{NAME}:1")).evaluation

    def evaluate(config: ExportConfig, variants: Mapping[str, Path], tokenizer: Path, dim: int) -> Evaluation:
        assert Path(config.model_dir).name == "applied"  # the base is never measured again
        shifted = {key: round(value + tatoeba[key], 2) for key, value in base["tatoeba"].items()}
        return {
            "tatoeba": shifted,
            "bucc2018-de-en": {**base["bucc2018-de-en"], "f1": base["bucc2018-de-en"]["f1"] + f1},
        }

    return evaluate


def _forced_publisher(
    base_and_delta: tuple[Path, Path], store: Path, tmp_path: Path, tatoeba: Mapping[str, float], f1: float
) -> Callable[[bool], DefaultResult]:
    """``publish_default`` of the delta on ``store`` with ``_forced`` numbers; the argument is ``gate``."""
    base_dir, delta = base_and_delta
    evaluate = _forced(store, tatoeba, f1)
    config = _config(base_dir, store)
    return lambda gate: publish_default(config, delta, applied_dir=tmp_path / "applied", evaluate=evaluate, gate=gate)


def _history(store: Path) -> str:
    return (store / NAME / ALIAS_HISTORY_FILE).read_text()


def test_publishes_the_aligned_version_measured_like_the_base(
    base_and_delta: tuple[Path, Path], store: Path, tmp_path: Path
) -> None:
    base_dir, delta = base_and_delta
    config = _config(base_dir, store)
    result = publish_default(config, delta, applied_dir=tmp_path / "applied", gate=False)
    assert (result.base.version, result.aligned and result.aligned.version) == (1, 2)
    v1, v2 = result.base, result.aligned
    assert v2 is not None
    for manifest in (v1, v2):  # both measured the same way
        assert manifest.evaluation["tatoeba"].keys() == {"deu-eng", "eng-deu", "mean"}
        assert manifest.evaluation["bucc2018-de-en"].keys() == {"f1", "precision", "recall", "threshold"}
    gate = v2.evaluation["gate"]
    tatoeba, bucc = (
        v2.evaluation[t][m] - v1.evaluation[t][m] for t, m in (("tatoeba", "mean"), ("bucc2018-de-en", "f1"))
    )
    assert (gate["tatoeba_mean_delta"], gate["bucc_f1_delta"]) == (round(tatoeba, 2), round(bucc, 2))
    assert gate["base_version"] == 1.0 and gate["passed"] in (0.0, 1.0)
    assert v2.evaluation["checkpoint-tatoeba"] == {"mean": 7.5}  # what the delta carried
    # The source names the delta file, its manifest and the base weights by sha256, then the training data.
    files = v2.source.data_files
    assert files[0] == DataFile(path="delta/delta.safetensors", sha256=sha256_file(delta / "delta.safetensors"))
    assert files[2] == DataFile(path="base/model.safetensors", sha256=sha256_file(base_dir / "model.safetensors"))
    assert len(files) == 3 + 4 and (v2.source.recipe, v2.source.steps) == ("top.toml", 2)
    # Ungated: promoted only if it passed; otherwise production is pinned to the base.
    assert ModelStore(store).aliases(NAME)["production"] == (2 if gate["passed"] == 1.0 else 1)
    history = _history(store)
    again = publish_default(config, delta, applied_dir=tmp_path / "applied", gate=False)
    assert (again.base.version, again.aligned and again.aligned.version) == (1, 2)
    assert ModelStore(store).versions(NAME) == [1, 2] and _history(store) == history


def test_every_variant_is_measured_on_tatoeba_and_bucc_under_its_own_names(
    base_and_delta: tuple[Path, Path], base_store: Path
) -> None:
    version = ModelStore(base_store).load(parse_ref(f"{NAME}:1"))
    model = version.file("model.onnx")
    measured = measure(
        _config(base_and_delta[0], base_store), {"fp32": model, "int8": model}, version.file("tokenizer.json"), 32
    )
    assert set(measured) == {"tatoeba", "tatoeba-int8", "bucc2018-de-en", "bucc2018-de-en-int8"}
    # Both variants are the same file here, so their numbers must agree too.
    assert measured["tatoeba"] == measured["tatoeba-int8"]
    assert measured["bucc2018-de-en"] == measured["bucc2018-de-en-int8"]
    assert measured["bucc2018-de-en"] == version.manifest.evaluation["bucc2018-de-en"]


def test_a_passing_gate_promotes_and_a_rerun_changes_nothing(
    base_and_delta: tuple[Path, Path], store: Path, tmp_path: Path
) -> None:
    # Mean +4.8, BUCC +5, one direction -0.4 (within the 0.5 allowed).
    publish = _forced_publisher(base_and_delta, store, tmp_path, {"deu-eng": 10.0, "eng-deu": -0.4, "mean": 4.8}, 5.0)
    result = publish(True)
    assert result.promoted and result.aligned is not None and result.aligned.version == 2
    gate = result.aligned.evaluation["gate"]
    base = result.base.evaluation
    assert gate == {
        "passed": 1.0,
        "tatoeba_mean_delta": 4.8,
        "bucc_f1_delta": 5.0,
        "worst_direction_delta": -0.4,
        "base_tatoeba_mean": base["tatoeba"]["mean"],
        "base_bucc_f1": base["bucc2018-de-en"]["f1"],
        "delta.deu-eng": 10.0,
        "delta.eng-deu": -0.4,
        "base_version": 1.0,
    }
    assert ModelStore(store).aliases(NAME) == {"production": 2}
    # Released like every promotion: the base pinned as the initial production, then the aligned version gated.
    moves = [(e.action, e.from_version, e.to_version, e.gate) for e in ModelStore(store).history(NAME)]
    assert moves == [("initial", None, 1, "initial"), ("promote", 1, 2, "passed")]
    history = _history(store)
    again = publish(True)
    assert again.promoted and ModelStore(store).versions(NAME) == [1, 2] and _history(store) == history


def test_a_failing_gate_publishes_nothing_unless_ungated_and_never_promotes(
    base_and_delta: tuple[Path, Path], store: Path, tmp_path: Path
) -> None:
    # Better on average and on BUCC, but eng-deu loses 0.6 points.
    publish = _forced_publisher(base_and_delta, store, tmp_path, {"deu-eng": 10.0, "eng-deu": -0.6, "mean": 4.7}, 5.0)
    with pytest.raises(GateError, match=r"fails the gate.*worst Tatoeba direction -0\.60 \(needs >= -0\.5\)"):
        publish(True)
    assert ModelStore(store).versions(NAME) == [1]
    ungated = publish(False)
    assert ungated.aligned is not None and not ungated.promoted
    assert ungated.aligned.evaluation["gate"]["passed"] == 0.0
    assert ModelStore(store).aliases(NAME) == {"production": 1}
    # The gated rerun finds the published version, publishes nothing and still refuses to promote it.
    with pytest.raises(GateError, match=r"xalign-e5-small:2 is not promoted"):
        publish(True)
    assert ModelStore(store).versions(NAME) == [1, 2] and ModelStore(store).aliases(NAME) == {"production": 1}


def _numbers(deu_eng: float, eng_deu: float, f1: float) -> Evaluation:
    return {
        "tatoeba": {"deu-eng": deu_eng, "eng-deu": eng_deu, "mean": round((deu_eng + eng_deu) / 2, 2)},
        "bucc2018-de-en": {"f1": f1},
    }


def test_gate_needs_both_tasks_for_both_versions() -> None:
    with pytest.raises(GateError, match="missing: base bucc2018-de-en, aligned tatoeba"):
        gate_numbers({"tatoeba": {"deu-eng": 1.0, "mean": 1.0}}, {"bucc2018-de-en": {"f1": 1.0}})
    base = _numbers(50.0, 50.0, 40.0)
    # Exactly -0.5 on a direction still passes; no BUCC gain fails, and so does no Tatoeba gain.
    assert gate_numbers(base, _numbers(60.0, 49.5, 45.0))["passed"] == 1.0
    assert gate_numbers(base, _numbers(60.0, 50.0, 40.0))["passed"] == 0.0
    assert gate_numbers(base, _numbers(50.0, 50.0, 45.0))["passed"] == 0.0


def test_cli_checks_the_delta_before_building_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["default", "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache")]
    assert main([*argv, "--delta", str(tmp_path / "missing")]) == 1
    assert "not a delta folder" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "store").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "delta.json").write_text(json.dumps({"schema_version": 99}))
    assert main([*argv, "--delta", str(bad)]) == 1
    assert "newer" in capsys.readouterr().err
