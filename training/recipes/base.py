"""The recipe layer both trainers share: a TOML file read into a validated, frozen pydantic dataclass.

A recipe (``recipe.py`` for the dual encoder, ``training/backpack_training/recipe.py`` for Backpack LMs) is a
tree of frozen pydantic dataclasses declared with ``RECIPE_CONFIG``: pydantic checks every key's type
strictly (``"10"`` is no int, ``true`` no number; lists become tuples) and refuses unknown keys, and each
class's ``__post_init__`` checks its values across fields, raising ``RecipeError`` that names the field.
``build_recipe`` reports every problem as one ``RecipeError`` saying where it is (``data[1].langs: ...``).

Relative paths:

* ``data_root`` and every ``RecipePath`` field resolve against the recipe file's folder;
* every ``DataPath`` field (inside ``[[data]]``, ``[dev]``, ``[[texts]]`` ...) resolves against ``data_root``,
  which is the recipe's folder when the recipe has none.

So a recipe works from any working directory, and moving the data means changing one key. Paths given to a
constructor directly (``Recipe(...)``, ``dataclasses.replace``) are kept as they are.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, ConfigDict, TypeAdapter, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails

RecipeT = TypeVar("RecipeT")

# The config of every recipe dataclass: a key the dataclass does not declare is an error.
RECIPE_CONFIG = ConfigDict(extra="forbid")

# Pydantic error types about a key rather than its value, and how a message says them.
_KEY_PROBLEMS = {
    "missing": "missing key(s)",
    "missing_argument": "missing key(s)",
    "unexpected_keyword_argument": "unknown key(s)",
    "extra_forbidden": "unknown key(s)",
}
# Pydantic error types of a value of the wrong type, and the type a message names.
_EXPECTED = {
    "int_type": "int",
    "float_type": "a number",
    "bool_type": "bool",
    "string_type": "str",
    "tuple_type": "list",
    "list_type": "list",
    "dict_type": "a table",
    "dataclass_type": "a table",
}


class RecipeError(ValueError):
    """A recipe key or value is wrong; the message names the field (and, from the loader, the table)."""


def require(ok: bool, name: str, message: str) -> None:
    """``RecipeError("name: message")`` unless ``ok``: the check of one field (or pair of fields)."""
    if not ok:
        raise RecipeError(f"{name}: {message}")


def resolve_path(base: Path, value: str | Path) -> Path:
    """``value`` as an absolute path (``~`` expanded), relative ones taken against ``base``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _resolved_against(key: str) -> Callable[[Path, ValidationInfo], Path]:
    """A validator resolving a path against the folder ``key`` of the validation context (none: as given)."""

    def resolve(value: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get(key)
        return value if base is None else resolve_path(base, value)

    return resolve


RecipePath = Annotated[Path, AfterValidator(_resolved_against("recipe_dir"))]
DataPath = Annotated[Path, AfterValidator(_resolved_against("data_root"))]


def recipe_dir_of(info: ValidationInfo) -> Path | None:
    """The recipe file's folder while a recipe is built from a mapping (None for a direct construction)."""
    folder: Path | None = (info.context or {}).get("recipe_dir")
    return folder


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line replacements for recipe keys (paths relative to the working directory)."""

    output: Path | None = None
    steps: int | None = None
    data_root: Path | None = None
    seed: int | None = None


def load_recipe_file(cls: type[RecipeT], path: Path, overrides: Overrides | None = None) -> RecipeT:
    """Parse and validate the recipe ``cls`` at ``path``; ``RecipeError`` (a ``ValueError``) names any wrong key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return build_recipe(cls, raw, path.resolve().parent, overrides)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def build_recipe(
    cls: type[RecipeT], raw: Mapping[str, Any], recipe_dir: Path, overrides: Overrides | None = None
) -> RecipeT:
    """Build recipe ``cls`` from parsed TOML; relative paths resolve as the module docstring says."""
    values = _overridden(raw, overrides or Overrides())
    data_root = values.setdefault("data_root", ".")
    root = resolve_path(recipe_dir, data_root) if isinstance(data_root, str) else recipe_dir
    # TOML values are JSON values: pydantic's strict JSON mode takes arrays as tuples and strings as paths,
    # but no string as a number.
    text = json.dumps(values, default=_json_value)
    try:
        recipe: RecipeT = _adapter(cls).validate_json(
            text, strict=True, context={"recipe_dir": recipe_dir, "data_root": root}
        )
    except ValidationError as exc:
        raise RecipeError(describe_errors(exc.errors())) from None
    return recipe


def _overridden(raw: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    values = dict(raw)
    if overrides.data_root is not None:
        values["data_root"] = str(overrides.data_root.resolve())
    if overrides.output is not None:
        values["output"] = str(overrides.output.resolve())
    if overrides.steps is not None:
        values["steps"] = overrides.steps
    if overrides.seed is not None:
        values["seed"] = overrides.seed
    return values


def _json_value(value: object) -> str:
    if isinstance(value, PurePath):
        return str(value)
    raise RecipeError(f"unsupported value {value!r} (a recipe holds strings, numbers, booleans, lists, tables)")


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    # A pydantic dataclass carries its validator and serializer: the adapter only wraps them.
    return TypeAdapter(cls)


def recipe_to_dict(recipe: object) -> dict[str, Any]:
    """The recipe as JSON-ready data (paths as absolute strings, tuples as lists) for manifests."""
    plain: dict[str, Any] = _adapter(type(recipe)).dump_python(recipe, mode="json")
    return plain


def recipe_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON schema of recipe ``cls``: the keys of its TOML file, their types and defaults."""
    schema: dict[str, Any] = _adapter(cls).json_schema()
    return schema


def describe_errors(errors: Sequence[ErrorDetails]) -> str:
    """Pydantic's errors as one line: keys missing or unknown per table, then each wrong value by its place."""
    keys: dict[tuple[str, str], list[str]] = {}
    values: list[str] = []
    for error in errors:
        loc = error["loc"]
        if error["type"] in _KEY_PROBLEMS and loc:
            place = (location(loc[:-1]) or "recipe", _KEY_PROBLEMS[error["type"]])
            keys.setdefault(place, []).append(str(loc[-1]))
        else:
            values.append(_value_problem(error))
    named = [f"{where}: {problem} {', '.join(names)}" for (where, problem), names in keys.items()]
    return "; ".join([*named, *values])


def location(loc: Sequence[int | str]) -> str:
    """``("data", 1, "langs")`` as ``data[1].langs``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _value_problem(error: ErrorDetails) -> str:
    where, kind = location(error["loc"]), error["type"]
    if kind == "value_error":
        # A __post_init__ check: a RecipeError names its field ("kind: ..."), other errors do not.
        cause = (error.get("ctx") or {}).get("error", error["msg"])
        if not where:
            return str(cause)
        return f"{where}.{cause}" if isinstance(cause, RecipeError) else f"{where}: {cause}"
    where = where or "recipe"
    if kind in _EXPECTED:
        value = error["input"]
        return f"{where}: expected {_EXPECTED[kind]}, got {type(value).__name__} {value!r}"
    if kind == "literal_error":
        return f"{where}: must be one of {(error.get('ctx') or {}).get('expected')}, not {error['input']!r}"
    return f"{where}: {error['msg']}"
