"""Which FFN output projections the int8 variant quantises: each layer's, measured on calibration texts.

Dynamic int8 of every weight ``MatMul`` runs 2.6x fp32 on an AVX-512 VNNI CPU, but costs multilingual-e5-small
1.0 Tatoeba points; nearly all of that comes from the FFN output projections (intermediate -> hidden, input:
the GELU output, whose outliers one uint8 scale per tensor serves badly), and not evenly: quantising layer 4's
alone adds more error than the other eleven together. So the int8 variant starts from every other ``MatMul``
quantised, then quantises each layer's FFN output projection alone and measures, on the packaged calibration
texts (``export/calibration_texts.txt``: NTREX-128 news sentences in 15 languages, none from Tatoeba or BUCC),
how much it adds to the mean cosine distance to fp32. Layers that add at most ``MAX_ADDED_DISTANCE`` of the
starting distance are quantised, the others stay fp32 (``benchmarks/results/graph_variants.md``):

    multilingual-e5-small, onnxruntime 1.32, Tatoeba deu fra ces spa rus both directions, 1 thread
    fp32                                       90.70            1.00x
    every MatMul and the Gathers int8          89.70 (-1.00)    2.57-2.74x
    FFN output projections all fp32            90.30 (-0.40)    1.71-1.75x
    calibrated: layers 0, 4, 5 kept fp32       90.24 (-0.46)    2.28-2.37x

The choice is written into the int8 file's metadata (``QUANTIZATION_KEY``) and, through
``quantization_evaluation``, into the manifest's evaluation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from xalign.export.family import FloatArray
from xalign.export.parity import open_session, run_onnx
from xalign.export.parity_texts import load_parity_texts, parity_texts_hash
from xalign.modelstore.artifacts import SENTENCE_EMBEDDING
from xalign.runtime.tokenization import TextTokenizer

log = logging.getLogger(__name__)

CALIBRATION_TEXTS_FILE = "calibration_texts.txt"
# A layer's FFN output projection is quantised when that alone adds at most this share of the starting mean
# cosine distance (every other MatMul int8). e5-small: layers 0, 4, 5 add 23-163 %, the others at most 8 %.
MAX_ADDED_DISTANCE = 0.10
# The metadata key of the int8 ONNX file that records how it was quantised (JSON).
QUANTIZATION_KEY = "xalign.quantization"


@dataclass(frozen=True)
class Calibration:
    """The texts the selection measures on, tokenised as the service will (prefix, truncation)."""

    texts: Sequence[str]
    tokenizer: TextTokenizer  # the published tokenizer.json with the version's prefix and token limit


@dataclass(frozen=True)
class Selection:
    """What the calibration found: the starting distance and, per layer, what quantising it adds."""

    texts: int
    texts_sha256: str
    # Mean (1 - cosine) to fp32 over the texts with every other MatMul int8, and what each layer adds to it.
    base_distance: float
    added_distance: dict[int, float]
    quantised: list[int]
    kept_fp32: list[int]


def calibration_path() -> Path:
    """The packaged calibration texts."""
    return Path(__file__).with_name(CALIBRATION_TEXTS_FILE)


def load_calibration_texts() -> list[str]:
    """The packaged calibration texts (the format of ``export/parity_texts.txt``)."""
    return load_parity_texts(calibration_path())


def embed(model: Path, calibration: Calibration, batch_size: int = 32) -> FloatArray:
    """Sentence embeddings (texts, dim) of ``model`` on the calibration texts, in text order."""
    session = open_session(model)
    ids = calibration.tokenizer.encode_ids(calibration.texts)
    rows = [
        run_onnx(session, calibration.tokenizer.pad(ids[start : start + batch_size]), [SENTENCE_EMBEDDING])
        for start in range(0, len(ids), batch_size)
    ]
    return np.concatenate([row[SENTENCE_EMBEDDING] for row in rows])


def mean_distance(reference: FloatArray, candidate: FloatArray) -> float:
    """Mean of 1 - cosine between matching rows of two (n, dim) arrays."""
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)  # (n,)
    cosine = (reference * candidate).sum(axis=1) / np.maximum(norms, 1e-30)  # (n,)
    return float(np.mean(1.0 - cosine))


def quantise_nodes(source: Path, target: Path, nodes: Sequence[str], per_channel: bool = True) -> Path:
    """Write ``source`` with the weight ``MatMul``s named in ``nodes`` quantised as the rest (dynamic, QInt8)."""
    quantize_dynamic(
        model_input=source,
        model_output=target,
        op_types_to_quantize=["MatMul"],
        per_channel=per_channel,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=list(nodes),
    )
    return target


def select_layers(fp32: Path, base: Path, candidates: Mapping[int, str], calibration: Calibration) -> Selection:
    """Quantise each candidate (layer -> MatMul name) alone on top of ``base`` and keep the harmless ones."""
    reference = embed(fp32, calibration)
    base_distance = mean_distance(reference, embed(base, calibration))
    added: dict[int, float] = {}
    for layer, node in candidates.items():
        probe = quantise_nodes(base, base.with_name(f"{base.stem}.probe{layer}.onnx"), [node])
        added[layer] = mean_distance(reference, embed(probe, calibration)) - base_distance
        probe.unlink()
        log.info("int8 calibration: FFN output of layer %d adds %.2e (base %.2e)", layer, added[layer], base_distance)
    quantised = [layer for layer, more in added.items() if more <= MAX_ADDED_DISTANCE * base_distance]
    return Selection(
        texts=len(calibration.texts),
        texts_sha256=parity_texts_hash(calibration_path()),
        base_distance=base_distance,
        added_distance=added,
        quantised=quantised,
        kept_fp32=[layer for layer in added if layer not in quantised],
    )


def record_selection(path: Path, recipe: Mapping[str, object]) -> None:
    """Store ``recipe`` (JSON) under ``QUANTIZATION_KEY`` in the metadata of the ONNX file ``path``."""
    model = onnx.load(str(path))
    kept = [entry for entry in model.metadata_props if entry.key != QUANTIZATION_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.helper.set_model_props(model, {**{e.key: e.value for e in kept}, QUANTIZATION_KEY: json.dumps(recipe)})
    onnx.save(model, str(path))


def selection_recipe(selection: Selection | None, **settings: object) -> dict[str, object]:
    """The JSON-ready record of how an int8 file was made: ``settings`` plus the calibration's findings."""
    return {**settings, **({"calibration": asdict(selection)} if selection is not None else {})}


def quantization_evaluation(path: Path) -> dict[str, dict[str, float]]:
    """The manifest's ``int8-quantization`` entry from the int8 file's metadata (empty when it has none)."""
    model = onnx.load(str(path), load_external_data=False)
    raw = next((e.value for e in model.metadata_props if e.key == QUANTIZATION_KEY), None)
    if raw is None:
        return {}
    recipe = json.loads(raw)
    metrics = {"ffn_out_fp32_layers": float(len(recipe.get("kept_fp32", [])))}
    calibration = recipe.get("calibration")
    if calibration is not None:
        metrics |= {"calibration_texts": float(calibration["texts"]), "base_distance": calibration["base_distance"]}
        metrics |= {f"ffn_out_added_distance_layer_{k}": v for k, v in calibration["added_distance"].items()}
    return {"int8-quantization": metrics}
