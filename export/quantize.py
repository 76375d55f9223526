"""The int8 variant: onnxruntime dynamic quantization of the fp32 graph.

Weights of every ``MatMul`` become int8 with one scale per output channel; activations are
quantised at run time (uint8, one scale per tensor), so no calibration data is needed.

The word embedding is a ``Gather`` on a ``[vocab, dim]`` table. For multilingual-e5-small
(250,037 x 384) that table is 384 MB of the 470 MB fp32 file: quantising only the MatMuls
leaves the int8 file at about 405 MB, quantising the Gather as well brings it to about
118 MB (measured on a same-shape random model: 386.8 MB → 98.2 MB for the table plus one
layer). onnxruntime quantises a Gather table per tensor (one scale for all rows), which is
coarser than the per-channel MatMul weights; it is on by default for the size, and
``quantize_embeddings=False`` keeps the table in fp32 when the parity numbers say so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

log = logging.getLogger(__name__)


def quantize_int8(
    source: Path,
    target: Path,
    *,
    per_channel: bool = True,
    quantize_embeddings: bool = True,
) -> Path:
    """Write a dynamically quantised int8 copy of the ONNX model ``source`` to ``target``."""
    op_types = ["MatMul", "Gather"] if quantize_embeddings else ["MatMul"]
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        model_input=Path(source),
        model_output=target,
        op_types_to_quantize=op_types,
        per_channel=per_channel,
        # Signed int8 weights with uint8 activations: onnxruntime's fast path on x86 (VNNI) and ARM.
        weight_type=QuantType.QInt8,
    )
    log.info("wrote %s (%.1f MB, quantised %s)", target, target.stat().st_size / 1e6, "+".join(op_types))
    return target
