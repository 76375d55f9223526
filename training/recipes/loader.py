"""Read a recipe TOML file into a validated ``Recipe``, and write a recipe back out as a plain dict.

Keys map one to one to the dataclass fields of ``recipe.py``; an unknown or missing key, or a value of the
wrong type, is a ``RecipeError`` naming where it is (``data[1].langs: ...``). Relative paths:

* ``data_root``, ``output``, ``cache_dir`` and a ``base`` folder resolve against the recipe file's folder;
* every path inside ``[[data]]``, ``[[dictionaries]]`` and ``[dev]`` resolves against ``data_root``;
* without ``data_root`` that is the recipe's folder; without ``cache_dir``, ``.cache/xalign`` in the working
  directory (the Makefile's ``CACHE``).

So a recipe works from any working directory, and moving the data means changing one key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from xalign.training.recipes.recipe import OFFLINE_E5, Recipe, RecipeError

DEFAULT_CACHE = Path(".cache/xalign")


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line replacements for recipe keys (paths relative to the working directory)."""

    output: Path | None = None
    steps: int | None = None
    data_root: Path | None = None


def load_recipe(path: Path, overrides: Overrides | None = None) -> Recipe:
    """Parse and validate the recipe at ``path``; ``RecipeError`` (a ``ValueError``) names any wrong key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return recipe_from_mapping(raw, path.resolve().parent, overrides or Overrides())
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def recipe_from_mapping(raw: Mapping[str, Any], recipe_dir: Path, overrides: Overrides | None = None) -> Recipe:
    """Build a ``Recipe`` from parsed TOML; relative paths resolve as the module docstring says."""
    overrides = overrides or Overrides()
    values = dict(raw)
    if overrides.data_root is not None:
        values["data_root"] = str(overrides.data_root.resolve())
    data_root = resolve_path(recipe_dir, _expect(values.get("data_root", "."), str, "data_root"))
    values["data_root"] = str(data_root)
    values.setdefault("cache_dir", str(DEFAULT_CACHE.resolve()))
    base = values.get("base")
    if isinstance(base, str) and base != OFFLINE_E5 and not base.startswith("offline:"):
        values["base"] = str(resolve_path(recipe_dir, base))
    if overrides.output is not None:
        values["output"] = str(overrides.output.resolve())
    if overrides.steps is not None:
        values["steps"] = overrides.steps
    recipe: Recipe = build_dataclass(Recipe, values, "", PathBases(top=recipe_dir, nested=data_root))
    return recipe


@dataclasses.dataclass(frozen=True)
class PathBases:
    """The folders relative paths resolve against: the recipe file's, and the data root."""

    top: Path  # for paths of the recipe's own keys
    nested: Path  # for paths inside [[data]], [[dictionaries]] and [dev]


def resolve_path(base: Path, value: str) -> Path:
    """``value`` as an absolute path (``~`` expanded), relative ones taken against ``base``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise RecipeError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def build_dataclass(cls: type, raw: Any, where: str, bases: PathBases) -> Any:
    """Construct dataclass ``cls`` from table ``raw``, refusing unknown and missing keys."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where or 'recipe'}: expected a table, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise RecipeError(f"{where or 'recipe'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in raw and _is_required(f)]
    if missing:
        raise RecipeError(f"{where or 'recipe'}: missing key(s) {', '.join(missing)}")
    hints = get_type_hints(cls)
    prefix = f"{where}." if where else ""
    kwargs = {key: _convert(value, hints[key], prefix + key, bases) for key, value in raw.items()}
    try:
        return cls(**kwargs)
    except RecipeError as exc:
        raise RecipeError(f"{prefix}{exc}") from exc


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(value: Any, hint: Any, where: str, bases: PathBases) -> Any:
    """Check ``value`` against the type ``hint`` and convert it (lists → tuples, strings → paths, tables)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _convert_union(value, hint, where, bases)
    if origin is Literal:
        if value not in get_args(hint):
            raise RecipeError(f"{where}: must be one of {list(get_args(hint))}, not {value!r}")
        return value
    if origin is tuple:
        return tuple(_convert(v, get_args(hint)[0], f"{where}[{i}]", bases) for i, v in enumerate(_list(value, where)))
    if origin is Mapping or origin is dict:
        table = _expect(value, dict, where)
        return {str(k): _convert(v, get_args(hint)[1], f"{where}.{k}", bases) for k, v in table.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build_dataclass(hint, value, where, PathBases(top=bases.nested, nested=bases.nested))
    return _scalar(value, hint, where, bases.top)


def _convert_union(value: Any, hint: Any, where: str, bases: PathBases) -> Any:
    # TOML has no null (an optional key is absent); None comes only from dicts such as recipe_to_dict's.
    if value is None and type(None) in get_args(hint):
        return None
    inner = [arg for arg in get_args(hint) if arg is not type(None)]
    return _convert(value, inner[0], where, bases) if len(inner) == 1 else _scalar(value, hint, where, bases.top)


def _list(value: Any, where: str) -> list[Any]:
    return list(_expect(value, list, where))


def _scalar(value: Any, hint: Any, where: str, base: Path) -> Any:
    if hint is Path:
        return resolve_path(base, _expect(value, str, where))
    if hint is bool:
        return _expect(value, bool, where)
    if hint is int:
        if isinstance(value, bool):
            raise RecipeError(f"{where}: expected int, got bool {value!r}")
        return _expect(value, int, where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecipeError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if hint is str:
        return _expect(value, str, where)
    # Param values (bool | int | float | str) are checked by the Objective itself.
    if isinstance(value, bool | int | float | str):
        return value
    raise RecipeError(f"{where}: unsupported value {value!r}")


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as JSON-ready data (paths as absolute strings, tuples as lists) for manifests."""
    plain: dict[str, Any] = plain_data(dataclasses.asdict(recipe))
    return plain


def plain_data(value: Any) -> Any:
    """``value`` with paths as strings and tuples as lists, recursively (JSON-ready)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value
