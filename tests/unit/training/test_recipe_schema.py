"""``xalign-train schema``: the JSON schema of each recipe kind names its keys and accepts the shipped recipes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xalign.training.cli import main
from xalign.training.recipes import RECIPES_DIR

SHIPPED = {"train": sorted(RECIPES_DIR.glob("*.toml")), "backpack": sorted((RECIPES_DIR / "backpack").glob("*.toml"))}


def _schema(kind: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["schema", kind]) == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n  "')  # indent 2
    schema: dict[str, Any] = json.loads(out)
    return schema


@pytest.mark.parametrize("kind", ["train", "backpack"])
def test_the_schema_accepts_every_shipped_recipe(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema(kind, capsys)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert len(SHIPPED[kind]) >= 4
    for path in SHIPPED[kind]:
        jsonschema.validate(tomllib.loads(path.read_text(encoding="utf-8")), schema)


def test_the_train_schema_names_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema("train", capsys)
    assert main(["schema"]) == 0 and json.loads(capsys.readouterr().out) == schema  # train is the default
    assert {"base", "data", "objectives", "steps", "output", "lr", "dev", "data_root"} <= set(schema["properties"])
    assert set(schema["required"]) == {"base", "data", "objectives", "steps", "output"}
    assert schema["additionalProperties"] is False
    source = schema["$defs"]["DataSource"]
    assert {"kind", "langs", "path", "split", "files", "columns", "max_rows"} == set(source["properties"])
    assert "tsv" in source["properties"]["kind"]["enum"]


def test_the_backpack_schema_names_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema("backpack", capsys)
    assert {"name", "init", "model", "tokenizer", "texts", "parallel", "objective"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "output", "steps", "batch_size", "lr"}
    weights = schema["$defs"]["SensiaWeights"]["properties"]
    assert set(weights) == {"target_lm", "source_lm", "sense_align", "context_align", "temperature"}
    assert weights["sense_align"]["minimum"] == 0


def test_the_schema_refuses_an_unknown_key(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema("backpack", capsys)
    raw = tomllib.loads(Path(SHIPPED["backpack"][0]).read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.validate({**raw, "surprise": 1}, schema)
