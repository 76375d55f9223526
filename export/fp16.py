"""The fp16 variant: weights and arithmetic in float16, inputs and output kept as in fp32.

Made with onnxruntime's bundled converter (``onnxruntime.transformers.float16``, no extra
package). ``keep_io_types`` leaves ``sentence_embedding`` float32, so clients see the same
interface for every variant. It halves the file and is meant for CUDA; onnxruntime's CPU
provider runs it too (that is how parity checks it) but no faster than fp32 (multilingual-e5-small,
2 threads, batches of 64: 82 vs 85 sentences/s).
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

log = logging.getLogger(__name__)


def convert_fp16(source: Path, target: Path) -> Path:
    """Write a float16 copy of the ONNX model ``source`` to ``target`` (float32 inputs/outputs kept)."""
    model = onnx.load(str(source))
    # Converted constants are clamped to the float16 range, so the attention mask's "minus infinity"
    # (float32 min) becomes -65504 and still masks after softmax.
    converted = convert_float_to_float16(model, keep_io_types=True)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(target))
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target
