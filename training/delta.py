"""A delta: the encoder tensors a checkpoint changed relative to its base, and how to apply them again.

A delta folder holds

* ``delta.safetensors``: only the tensors whose values differ from the base (for a ``train_top_layers`` run,
  the top layers), at most ``MAX_DELTA_BYTES``: whole (exact), or, extracted with a ``Compression``, their
  changes compressed (``delta_codec``: low-rank factors, float16 residuals, the embedding rows that moved),
  which puts a whole-encoder fine-tune of multilingual-e5-small in ~25 MB;
* ``delta.json``: the ``DeltaManifest``: the base it applies to (sha256 of its ``model.safetensors`` and
  ``config.json``), every tensor's shape, dtype, encoding and sha256 (of the tensor as applied), the file's
  sha256, the sha256 of the full weights after applying (the trained checkpoint's; for a compressed delta the
  rebuilt weights', with how far they are from the checkpoint's in ``compression``), and where the delta
  came from (recipe, data files with sha256, step, metrics, and an evaluation when given);
* ``recipe.toml``: a copy of the recipe file, when one is given.

``extract_delta`` writes one from a checkpoint and its base; ``apply_delta`` rebuilds the full transformers
folder from the base and the delta, checking every hash on the way. Both write into a hidden sibling folder
that is renamed into place, so a delta or applied folder is always complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import torch
from safetensors.torch import load_file, save_file

from xalign.modelstore.integrity import sha256_file
from xalign.training.delta_codec import Compression, choose, decode, encode, parts_of, stored_name, stored_names
from xalign.training.recipes.base import recipe_to_dict
from xalign.training.recipes.loader import load_recipe
from xalign.training.trainer.build import TRAINING_KEYS
from xalign.training.trainer.checkpoint import TRAINING_STATE, read_manifest
from xalign.training.trainer.train_module import frozen_parameter

DELTA_FILE: Final = "delta.safetensors"
DELTA_MANIFEST: Final = "delta.json"
RECIPE_COPY: Final = "recipe.toml"
# Written into an applied folder: which base and delta made it (no timestamps, so export fingerprints are stable).
APPLIED_RECORD: Final = "xalign_delta.json"
WEIGHTS: Final = "model.safetensors"
CONFIG: Final = "config.json"
SCHEMA_VERSION: Final = 2  # 2: per-tensor encodings (delta_codec); a schema-1 delta reads as all "full"
# The bound on what a committed delta may weigh: 4 layers of multilingual-e5-small in fp32 are 28.4 MB.
MAX_DELTA_BYTES: Final = 30_000_000

Evaluation = Mapping[str, Mapping[str, float]]


class DeltaError(ValueError):
    """A delta cannot be made or applied: the message says which file, hash or tensor is wrong."""


@dataclass(frozen=True)
class DeltaBase:
    """The base a delta applies to: how it is described, and the sha256 of its weights and config files."""

    description: str
    model_sha256: str
    config_sha256: str


@dataclass(frozen=True)
class TensorEntry:
    """One tensor the delta sets: its shape, dtype (``torch.float32`` → ``"float32"``), the sha256 of its applied
    values and how ``delta.safetensors`` stores it (``delta_codec``)."""

    shape: list[int]
    dtype: str
    sha256: str
    encoding: str = "full"


@dataclass(frozen=True)
class DeltaManifest:
    """``delta.json`` (see the module docstring); ``result_sha256`` is ``weights_sha256`` of the applied model."""

    base: DeltaBase
    tensors: dict[str, TensorEntry]
    file_sha256: str
    file_bytes: int
    result_sha256: str
    recipe: dict[str, Any]
    recipe_file: str | None
    step: int
    steps: int
    data_files: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_revision: str | None = None
    evaluation: dict[str, dict[str, float]] | None = None
    recipe_sha256: str | None = None
    compression: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """Indented JSON with a trailing newline."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> DeltaManifest:
        """Inverse of ``to_json``; ``DeltaError`` for a newer schema version."""
        data = json.loads(raw)
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise DeltaError(f"delta schema_version {data['schema_version']} is newer than this xalign's")
        try:
            data["base"] = DeltaBase(**data["base"])
            data["tensors"] = {name: TensorEntry(**entry) for name, entry in data["tensors"].items()}
            return cls(**data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise DeltaError(f"{DELTA_MANIFEST} is malformed: {exc!r}") from exc


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's raw bytes (C order)."""
    return hashlib.sha256(_raw_bytes(tensor)).hexdigest()


def weights_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, by name: equal iff the weights are equal."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name} {_dtype_name(tensor)} {list(tensor.shape)}\n".encode())
        digest.update(_raw_bytes(tensor))
    return digest.hexdigest()


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    # Viewed as bytes, so dtypes numpy lacks (bfloat16) hash too.
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def read_delta(delta_dir: Path) -> DeltaManifest:
    """The manifest of a delta folder; ``FileNotFoundError`` if it has none."""
    path = Path(delta_dir) / DELTA_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a delta folder (no {DELTA_MANIFEST})")
    return DeltaManifest.from_json(path.read_text(encoding="utf-8"))


def describe_base(base_dir: Path, description: str) -> DeltaBase:
    """The sha256 of a transformers folder's ``model.safetensors`` and ``config.json``."""
    base_dir = Path(base_dir)
    for name in (WEIGHTS, CONFIG):
        if not (base_dir / name).is_file():
            raise FileNotFoundError(f"{base_dir}: no {name} (a delta needs a safetensors transformers folder)")
    return DeltaBase(description, sha256_file(base_dir / WEIGHTS), sha256_file(base_dir / CONFIG))


def changed_tensors(trained: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of ``trained`` whose values differ from ``base``; both must hold the same names and shapes."""
    if set(trained) != set(base):
        differing = sorted(set(trained) ^ set(base))
        raise DeltaError(f"the checkpoint and the base hold different tensors: {', '.join(differing[:8])}")
    changed: dict[str, torch.Tensor] = {}
    for name in sorted(trained):
        new, old = trained[name], base[name]
        if new.shape != old.shape or new.dtype != old.dtype:
            raise DeltaError(
                f"{name}: {new.dtype} {list(new.shape)} in the checkpoint, {old.dtype} "
                f"{list(old.shape)} in the base: not the same architecture"
            )
        if not torch.equal(new, old):
            changed[name] = new
    return changed


def check_trainable(names: list[str], recipe: Mapping[str, Any], num_layers: int) -> None:
    """``DeltaError`` if the recipe kept any of ``names`` frozen (the pooler; embeddings; lower layers)."""
    top = recipe.get("train_top_layers")
    embeddings = bool(recipe.get("freeze_embeddings")) or top is not None
    frozen = [n for n in names if frozen_parameter(n, embeddings=embeddings, top_layers=top, num_layers=num_layers)]
    if frozen:
        raise DeltaError(f"tensors the recipe keeps frozen changed: {', '.join(frozen[:8])} (is this the base?)")


def _groups(tensors: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Bytes per layer (``encoder.layer.3``) or top-level module (``embeddings``), for error messages."""
    groups: dict[str, int] = {}
    for name, tensor in tensors.items():
        parts = name.split(".")
        key = ".".join(parts[:3]) if parts[:2] == ["encoder", "layer"] else parts[0]
        groups[key] = groups.get(key, 0) + tensor.numel() * tensor.element_size()
    return groups


def check_size(path: Path, tensors: Mapping[str, torch.Tensor], max_bytes: int) -> None:
    """``DeltaError`` saying how big the delta file is and which tensors make it up, if over ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        parts = ", ".join(f"{key} {value / 1e6:.1f} MB" for key, value in sorted(_groups(tensors).items()))
        raise DeltaError(
            f"the delta is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit: "
            f"{len(tensors)} stored tensors in {parts}; train fewer layers (train_top_layers) or compress (--rank)"
        )


def _config(folder: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    return config


# config.json keys that record who saved the file, not what the model computes.
_VOLATILE_CONFIG: Final = frozenset({"transformers_version", "torch_dtype", "dtype", "_name_or_path"})


def check_config(checkpoint_dir: Path, base_dir: Path) -> None:
    """``DeltaError`` if the configs disagree on a key both set: the applied model gets the base's config."""
    trained, base = _config(checkpoint_dir), _config(base_dir)
    differing = sorted(k for k in (set(trained) & set(base)) - _VOLATILE_CONFIG if trained[k] != base[k])
    if differing:
        raise DeltaError(f"{checkpoint_dir}: its {CONFIG} differs from the base's in {', '.join(differing)}")


def _check_recipe_file(recipe_toml: Path, trained: Mapping[str, Any]) -> None:
    """``DeltaError`` if the recipe file's training settings are not the checkpoint's."""
    now = recipe_to_dict(load_recipe(recipe_toml))
    differing = [key for key in TRAINING_KEYS if trained.get(key) != now[key]]
    if differing:
        raise DeltaError(f"{recipe_toml}: not the recipe of this checkpoint ({', '.join(differing)} differ)")


def extract_delta(
    checkpoint_dir: Path,
    base_dir: Path,
    out_dir: Path,
    *,
    evaluation: Evaluation | None = None,
    recipe_toml: Path | None = None,
    max_bytes: int = MAX_DELTA_BYTES,
    compression: Compression | None = None,
) -> DeltaManifest:
    """Write the delta of ``checkpoint_dir`` (a trainer checkpoint) over ``base_dir`` into ``out_dir``: the changed
    tensors whole, or their changes compressed by ``compression`` (lossy: ``delta_codec``).

    Refuses a delta over ``max_bytes``, changed tensors the recipe kept frozen, a checkpoint of another
    architecture, and an ``out_dir`` that holds something other than a delta. Returns the manifest written.
    """
    checkpoint_dir, base_dir, out_dir = Path(checkpoint_dir), Path(base_dir), Path(out_dir)
    checkpoint = read_manifest(checkpoint_dir)
    if recipe_toml is not None:
        _check_recipe_file(recipe_toml, checkpoint.recipe)
    base = describe_base(base_dir, checkpoint.base_model)
    trained, base_weights = load_file(str(checkpoint_dir / WEIGHTS)), load_file(str(base_dir / WEIGHTS))
    changed = changed_tensors(trained, base_weights)
    if not changed:
        raise DeltaError(f"{checkpoint_dir}: no tensor differs from the base {base_dir}")
    check_config(checkpoint_dir, base_dir)
    check_trainable(list(changed), checkpoint.recipe, int(_config(checkpoint_dir).get("num_hidden_layers", 0)))
    stored, encodings = encode_delta(changed, base_weights, compression)
    applied = decode_delta(dict(base_weights), stored, encodings)
    lossy = None if compression is None else compression_record(compression, applied, trained, base_weights)
    with _staged(out_dir, refuse_unless=DELTA_MANIFEST) as staged:
        save_file(stored, str(staged / DELTA_FILE), metadata={"format": "pt"})
        check_size(staged / DELTA_FILE, stored, max_bytes)
        if recipe_toml is not None:
            shutil.copyfile(recipe_toml, staged / RECIPE_COPY)
        manifest = DeltaManifest(
            base=base,
            tensors={name: _entry(applied[name], encoding) for name, encoding in encodings.items()},
            file_sha256=sha256_file(staged / DELTA_FILE),
            file_bytes=(staged / DELTA_FILE).stat().st_size,
            result_sha256=weights_sha256(applied),
            recipe=checkpoint.recipe,
            recipe_file=checkpoint.recipe_file,
            recipe_sha256=sha256_file(recipe_toml) if recipe_toml is not None else None,
            step=checkpoint.step,
            steps=checkpoint.steps,
            data_files=[entry.model_dump() for entry in checkpoint.data_files()],
            metrics=checkpoint.metrics,
            code_revision=checkpoint.code_revision,
            evaluation={task: dict(metrics) for task, metrics in evaluation.items()} if evaluation else None,
            compression=lossy,
        )
        (staged / DELTA_MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _entry(tensor: torch.Tensor, encoding: str) -> TensorEntry:
    return TensorEntry(list(tensor.shape), _dtype_name(tensor), tensor_sha256(tensor), encoding)


def encode_delta(
    changed: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor], compression: Compression | None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors ``delta.safetensors`` stores for ``changed``, and each changed tensor's encoding."""
    if compression is None:
        return dict(changed), dict.fromkeys(changed, "full")
    stored: dict[str, torch.Tensor] = {}
    encodings: dict[str, str] = {}
    for name, tensor in changed.items():
        encoding = choose(name, tensor, compression)
        for part, value in encode(encoding, tensor, base[name], compression).items():
            stored[stored_name(name, part)] = value
        encodings[name] = encoding
    return stored, encodings


def decode_delta(
    weights: dict[str, torch.Tensor], stored: Mapping[str, torch.Tensor], encodings: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """``weights`` with every encoded tensor decoded over it; a result of another shape or dtype is refused."""
    for name, encoding in encodings.items():
        old = weights.get(name)
        new = None if old is None else decode(encoding, parts_of(name, encoding, stored), old)
        if old is None or new is None or new.shape != old.shape or new.dtype != old.dtype:
            raise DeltaError(f"{name}: the delta's {encoding} tensor has no counterpart of its shape in the base")
        weights[name] = new
    return weights


def compression_record(
    compression: Compression,
    applied: Mapping[str, torch.Tensor],
    trained: Mapping[str, torch.Tensor],
    base: Mapping[str, torch.Tensor],
) -> dict[str, Any]:
    """The settings and what they lost: ``lost_change`` is ||applied - trained|| / ||trained - base|| over all
    tensors (0: exact), ``max_abs_error`` the largest weight difference from the checkpoint."""
    lost = sum(float((applied[n].double() - trained[n].double()).square().sum()) for n in trained)
    change = sum(float((trained[n].double() - base[n].double()).square().sum()) for n in trained)
    worst = max(float((applied[n].double() - trained[n].double()).abs().max()) for n in trained)
    return {**asdict(compression), "lost_change": (lost / max(change, 1e-30)) ** 0.5, "max_abs_error": worst}


@contextmanager
def _staged(target: Path, refuse_unless: str) -> Iterator[Path]:
    """A hidden sibling folder of ``target``, renamed onto ``target`` on success and removed on failure.

    Refuses to replace a non-empty ``target`` that lacks ``refuse_unless`` (it is not ours to replace).
    """
    if target.exists() and any(target.iterdir()) and not (target / refuse_unless).is_file():
        raise DeltaError(f"{target} holds other files (no {refuse_unless}): refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        folder.chmod(0o755)  # mkdtemp makes 0700; deltas are committed and applied folders shared
        yield folder
        for path in folder.iterdir():
            path.chmod(0o644)  # safetensors writes 0600
        _replace_dir(folder, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _replace_dir(staged: Path, target: Path) -> None:
    """Put the complete folder ``staged`` at ``target`` with renames (the old one is removed after)."""
    retired = None
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        target.replace(retired / target.name)
    staged.replace(target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def verify_base(base_dir: Path, manifest: DeltaManifest) -> None:
    """``DeltaError`` naming both hashes if ``base_dir`` is not the base the delta was made from."""
    found = describe_base(base_dir, manifest.base.description)
    if found.model_sha256 != manifest.base.model_sha256:
        raise DeltaError(
            f"{base_dir}: wrong base: its {WEIGHTS} has sha256 {found.model_sha256}, the delta "
            f"applies to {manifest.base.model_sha256} ({manifest.base.description})"
        )
    if found.config_sha256 != manifest.base.config_sha256:
        raise DeltaError(
            f"{base_dir}: wrong base: its {CONFIG} has sha256 {found.config_sha256}, the delta "
            f"applies to {manifest.base.config_sha256}"
        )


def load_delta_tensors(delta_dir: Path, manifest: DeltaManifest) -> dict[str, torch.Tensor]:
    """The tensors of ``delta.safetensors`` after checking the file's sha256 and its names against the manifest."""
    path = Path(delta_dir) / DELTA_FILE
    found = sha256_file(path)
    if found != manifest.file_sha256:
        raise DeltaError(f"{path}: corrupted or replaced: sha256 {found}, {DELTA_MANIFEST} says {manifest.file_sha256}")
    tensors = load_file(str(path))
    expected = {stored for name, entry in manifest.tensors.items() for stored in stored_names(name, entry.encoding)}
    if set(tensors) != expected:
        raise DeltaError(f"{path}: its tensors differ from the names in {DELTA_MANIFEST}")
    return tensors


def apply_delta(base_dir: Path, delta_dir: Path, out_dir: Path) -> Path:
    """Write the base with the delta applied to ``out_dir`` (a transformers folder) and return it.

    Checks the base's sha256, the delta file's, its tensor names and shapes, and that the result equals the
    trained checkpoint (``result_sha256``). Config and tokenizer files are copied from the base. Idempotent:
    an ``out_dir`` already built from the same base and delta files is returned as is.
    """
    base_dir, delta_dir, out_dir = Path(base_dir), Path(delta_dir), Path(out_dir)
    manifest = read_delta(delta_dir)
    verify_base(base_dir, manifest)
    record = {
        "base_model_sha256": manifest.base.model_sha256,
        "delta_file_sha256": sha256_file(delta_dir / DELTA_FILE),
        "delta_manifest_sha256": sha256_file(delta_dir / DELTA_MANIFEST),
    }
    if _is_applied(out_dir, record):
        return out_dir
    encodings = {name: entry.encoding for name, entry in manifest.tensors.items()}
    weights = decode_delta(load_file(str(base_dir / WEIGHTS)), load_delta_tensors(delta_dir, manifest), encodings)
    if weights_sha256(weights) != manifest.result_sha256:
        raise DeltaError(f"{delta_dir}: the applied weights differ from the checkpoint the delta was made from")
    with _staged(out_dir, refuse_unless=APPLIED_RECORD) as staged:
        _copy_base_files(base_dir, staged)
        save_file(weights, str(staged / WEIGHTS), metadata={"format": "pt"})
        record["model_sha256"] = sha256_file(staged / WEIGHTS)
        (staged / APPLIED_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir


def _copy_base_files(base_dir: Path, target: Path) -> None:
    """Config and tokenizer files: every visible file but the weights and the base's own provenance records."""
    for path in sorted(base_dir.iterdir()):
        skip = path.name in (WEIGHTS, TRAINING_STATE) or path.name.startswith((".", "xalign_"))
        if path.is_file() and not skip:
            shutil.copyfile(path, target / path.name)


def _is_applied(out_dir: Path, record: Mapping[str, str]) -> bool:
    """True if ``out_dir`` was built from exactly these files and its weights are unchanged since."""
    try:
        found = json.loads((out_dir / APPLIED_RECORD).read_text(encoding="utf-8"))
        same = all(found[key] == value for key, value in record.items())
        return bool(same and sha256_file(out_dir / WEIGHTS) == found["model_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
