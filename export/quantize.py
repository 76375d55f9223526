"""The int8 variant: onnxruntime dynamic quantization of the fp32 graph, FFN output projections kept fp32.

Weights of the ``MatMul``s become int8 with one scale per output channel; activations are
quantised at run time (uint8, one scale per tensor, per batch), so no calibration data is needed.

Excluded: the FFN output projection (intermediate → hidden, the ``MatMul`` fed by GELU) of every
layer. Its input is the widest (1536) and most outlier-heavy activation, and one uint8 scale for
the whole tensor costs the most there. multilingual-e5-small, Tatoeba deu fra ces spa rus both
directions, onnxruntime 1.32 on AVX2 without VNNI, 2 threads (benchmarks/results/int8_variants.md):

    fp32                       90.70                                1.00x  471 MB
    all MatMuls + Gathers      89.28 (-1.42, eng-ces -4.4)          1.38x  119 MB
    FFN output kept fp32       90.12 (-0.58, worst eng-spa -1.7)    1.13x  140 MB   <- default

Screened on ces+deu and rejected: excluding the Q/K/V, attention-output or FFN-input projections
instead (-1.9, -1.8, -1.3), reduce_range (-1.5), uint8 weights (-1.4), keeping the embedding
table fp32 (-1.8: the table is not the problem), a per-row int8 table (-2.1). Weight-only
``MatMulNBits`` 8 bit is lossless (-0.1) and batch-independent but no faster than fp32 on AVX2
(0.8-1.0x), so it only buys size. Activation scales are per batch, so an embedding still depends
slightly on its batch mates (max abs 0.011 vs 0.016 before; fp32: 3e-8).

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

from xalign.export.onnx_graph import drop_intermediate_shapes

log = logging.getLogger(__name__)


def quantize_int8(
    source: Path,
    target: Path,
    *,
    per_channel: bool = True,
    quantize_embeddings: bool = True,
    exclude_roles: Sequence[str] = ("ffn_out",),
) -> Path:
    """Write a dynamically quantised int8 copy of the ONNX model ``source`` to ``target``.

    ``exclude_roles`` (see :func:`weight_matmuls`) stay fp32; the default keeps every layer's
    FFN output projection in fp32, which the module docstring explains.
    """
    op_types = ["MatMul", "Gather"] if quantize_embeddings else ["MatMul"]
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    graph = onnx.load(str(source), load_external_data=False)
    excluded = [name for name, role, _ in weight_matmuls(graph) if role in exclude_roles]
    del graph
    quantize_dynamic(
        model_input=source,
        model_output=target,
        op_types_to_quantize=op_types,
        per_channel=per_channel,
        # Signed int8 weights with uint8 activations: onnxruntime's fast path on x86 (VNNI) and ARM.
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
    )
    # The quantiser's shape inference records the shapes again; see ``export/onnx_graph.py`` for why they go.
    drop_intermediate_shapes(target)
    log.info(
        "wrote %s (%.1f MB, quantised %s, %d MatMuls kept fp32)",
        target,
        target.stat().st_size / 1e6,
        "+".join(op_types),
        len(excluded),
    )
    return target


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
