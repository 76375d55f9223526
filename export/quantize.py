"""The int8 variant: onnxruntime dynamic quantization of the fp32 graph, sensitive FFN output projections fp32.

Weights of the ``MatMul``s become int8 with one scale per output channel; activations are
quantised at run time (uint8, one scale per tensor, per batch). The FFN output projection
(intermediate -> hidden, the ``MatMul`` fed by GELU) is where that costs accuracy: its input is the
widest (1536) and most outlier-heavy activation. Without calibration texts every layer's stays fp32;
with them (the export's default, ``export/int8_selection.py``) only the layers where quantising it
measurably moves the vectors do. multilingual-e5-small, Tatoeba deu fra ces spa rus both directions,
onnxruntime 1.32, 1 thread (CPU and wall time) on AVX-512 VNNI (``benchmarks/results/graph_variants.md``):

    fp32                                   90.70                           1.00x        471 MB
    all MatMuls + Gathers                  89.70 (-1.00, eng-ces -4.1)     2.57-2.74x   119 MB
    FFN output kept fp32 (no calibration)  90.30 (-0.40, rus-eng -1.1)     1.71-1.75x   140 MB
    calibrated: layers 0, 4, 5 kept fp32   90.24 (-0.46, eng-ces -1.2)     2.28-2.37x   124 MB   <- default

Rejected (``benchmarks/results/int8_variants.md``, ``graph_variants.md``): static QDQ calibrated with
min/max (85.5, -5.2: calibrated ranges are wider than each batch's own), SmoothQuant on the FFN output
projections (89.2: the migrated scales cost the per-channel weights more than they save the activations),
reduce_range, uint8 weights, per-row embedding tables; weight-only ``MatMulNBits`` is lossless but no faster.
Activation scales are per batch, so an embedding still depends slightly on its batch mates (max abs ~0.01).

The word embedding is a ``Gather`` on a ``[vocab, dim]`` table. For multilingual-e5-small
(250,037 x 384) that table is 384 MB of the 470 MB fp32 file: quantising only the MatMuls
leaves the int8 file at about 405 MB, quantising the Gather as well brings it to about
120-140 MB. onnxruntime quantises a Gather table per tensor (one scale for all rows), which
measured no worse than fp32 or per-row tables here; ``quantize_embeddings=False`` keeps it fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from xalign.export.int8_selection import (
    Calibration,
    Selection,
    quantise_nodes,
    record_selection,
    select_layers,
    selection_recipe,
)
from xalign.export.onnx_graph import drop_intermediate_shapes

log = logging.getLogger(__name__)


def quantize_int8(
    source: Path,
    target: Path,
    *,
    per_channel: bool = True,
    quantize_embeddings: bool = True,
    exclude_roles: Sequence[str] = ("ffn_out",),
    calibration: Calibration | None = None,
) -> Path:
    """Write a dynamically quantised int8 copy of the ONNX model ``source`` to ``target``.

    ``exclude_roles`` (see :func:`weight_matmuls`) stay fp32. With ``calibration``, each layer's FFN output
    projection is then quantised where the calibration texts show it harmless (``export/int8_selection.py``).
    How the file was made is recorded in its metadata (``int8_selection.QUANTIZATION_KEY``).
    """
    op_types = ["MatMul", "Gather"] if quantize_embeddings else ["MatMul"]
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    roles = weight_matmuls(onnx.load(str(source), load_external_data=False))
    excluded = {name: (role, layer) for name, role, layer in roles if role in exclude_roles}
    quantize_dynamic(
        model_input=source,
        model_output=target,
        op_types_to_quantize=op_types,
        per_channel=per_channel,
        # Signed int8 weights with uint8 activations: onnxruntime's fast path on x86 (VNNI) and ARM.
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(excluded),
    )
    selection = None
    if calibration is not None:
        selection = quantise_harmless(source, target, excluded, calibration, per_channel)
        quantised = {("ffn_out", layer) for layer in selection.quantised}
        excluded = {name: where for name, where in excluded.items() if where not in quantised}
    # The quantiser's shape inference records the shapes again; see ``export/onnx_graph.py`` for why they go.
    drop_intermediate_shapes(target)
    kept = sorted({layer for role, layer in excluded.values() if role == "ffn_out"})
    recipe = selection_recipe(
        selection,
        method="onnxruntime dynamic: int8 per-channel weights, uint8 activations with one scale per tensor and batch",
        per_channel=per_channel,
        op_types=op_types,
        kept_fp32=kept,
        kept_fp32_roles=sorted({role for role, _ in excluded.values()}),
    )
    record_selection(target, recipe)
    log.info(
        "wrote %s (%.1f MB, %s, %d MatMuls kept fp32)", target, target.stat().st_size / 1e6, op_types, len(excluded)
    )
    return target


def quantise_harmless(
    source: Path, target: Path, excluded: dict[str, tuple[str, int]], calibration: Calibration, per_channel: bool
) -> Selection:
    """Quantise in ``target`` the excluded FFN output projections the calibration finds harmless (in place)."""
    ffn_out = {layer: name for name, (role, layer) in excluded.items() if role == "ffn_out"}
    selection = select_layers(source, target, ffn_out, calibration)
    if selection.quantised:
        base = target.rename(target.with_name(f"{target.stem}.base.onnx"))
        quantise_nodes(base, target, [ffn_out[layer] for layer in selection.quantised], per_channel)
        base.unlink()
    return selection


def weight_matmuls(model: onnx.ModelProto) -> list[tuple[str, str, int]]:
    """``(node name, role, layer)`` of every MatMul with a constant 2-D weight, in graph order.

    Roles of a BERT-style layer: ``qkv`` (the three projections of one input), ``attn_out``,
    ``ffn_in`` (hidden → intermediate, wider) and ``ffn_out`` (intermediate → hidden, narrower);
    a layer ends at its ``ffn_out``.
    """
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    found: list[tuple[str, str, int]] = []
    layer, square = 0, 0
    for node in model.graph.node:
        shape = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if shape is None or len(shape) != 2:
            continue
        k, n = shape
        if k > n:
            found.append((node.name, "ffn_out", layer))
            layer, square = layer + 1, 0
        elif k < n:
            found.append((node.name, "ffn_in", layer))
        else:
            found.append((node.name, "qkv" if square < 3 else "attn_out", layer))
            square += 1
    return found
