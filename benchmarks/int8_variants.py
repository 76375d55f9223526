"""Tatoeba accuracy, speed and batch dependence of int8 variants of one fp32 ONNX export.

    python -m benchmarks.int8_variants --source store/xalign-e5-small/1/model.onnx --work /tmp/int8work \\
        --variants dynamic-all dynamic-u8u8 chosen --langs ces deu
    python -m benchmarks.int8_variants --source ... --work /tmp/int8work --variants chosen --speed \\
        --markdown benchmarks/results/int8_variants.md

``calibrated`` is the export's default (``export/int8_selection.py``); ``static-minmax`` (static QDQ) and
``smooth-ffn-out`` (SmoothQuant on the FFN output projections) calibrate on ``export/calibration_texts.txt``;
``benchmarks/graph_variants.py`` compares them on the current graph.

Every variant is built once into ``<work>/<name>.onnx`` from ``--source`` (the tokenizer is the
``tokenizer.json`` beside it) and its results are cached in ``<work>/results.json``, so screening on two
languages and then running the finalists on all five reuses the files. Accuracy is Tatoeba (deu fra ces
spa rus, both directions, exact cosine 1-NN) and is compared with fp32 evaluated the same way; speed is
the protocol of ``benchmarks/protocol.py`` run in process (protocol texts, 2 threads, length-sorted
batches of 32, one warm-up, median of 3) with fp32 measured in the same run, since the machines are
shared and only ratios compare;
batch-vs-single is the largest absolute difference between 16 texts embedded one by one and the same
texts inside one padded batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

from benchmarks.protocol import DEFAULT_DATA, THREADS, median_rate, protocol_texts
from xalign.export.int8_selection import Calibration, load_calibration_texts
from xalign.export.onnx_graph import drop_intermediate_shapes
from xalign.export.quantize import quantize_int8, weight_matmuls
from xalign.modelstore.artifacts import INPUT_NAMES
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.session import feeds
from xalign.runtime.tokenization import TextTokenizer
from xalign.training.evaluate.report import tatoeba_evaluation
from xalign.training.evaluate.tatoeba import evaluate_tatoeba

ALL_LANGS = ["deu", "fra", "ces", "spa", "rus"]
Builder = Callable[[Path, Path], None]


def _dynamic(
    *, gather: bool = True, weight_type: QuantType = QuantType.QInt8, reduce_range: bool = False, exclude: str = ""
) -> Builder:
    """onnxruntime dynamic quantisation of the weight MatMuls (and the Gathers) minus the roles in ``exclude``."""

    def build(source: Path, target: Path) -> None:
        model = onnx.load(str(source), load_external_data=False)
        excluded = [name for name, role, layer in weight_matmuls(model) if _matches(exclude, role, layer)]
        quantize_dynamic(
            model_input=source,
            model_output=target,
            op_types_to_quantize=["MatMul", "Gather"] if gather else ["MatMul"],
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=weight_type,
            nodes_to_exclude=excluded,
        )
        drop_intermediate_shapes(target)

    return build


def _matches(spec: str, role: str, layer: int) -> bool:
    """``spec`` is comma-separated ``role`` or ``role@layer`` or ``L<layer>`` items; empty matches nothing."""
    for item in filter(None, spec.split(",")):
        if item.startswith("L") and item[1:].isdigit():
            if layer == int(item[1:]):
                return True
        elif "@" in item:
            r, at = item.split("@")
            if r == role and layer == int(at):
                return True
        elif item == role:
            return True
    return False


def _row_gather(source: Path, target: Path) -> None:
    """Step 2 of the per-row table: replace the (fp32) word-embedding Gather by int8 rows x per-row scale."""
    model = onnx.load(str(source))
    init = {i.name: i for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "Gather" and "word_embeddings" in n.input[0])
    table = numpy_helper.to_array(init[node.input[0]]).astype(np.float32)  # (vocab, dim)
    scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0  # (vocab,)
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    model.graph.initializer.remove(init[node.input[0]])
    base = node.input[0]
    model.graph.initializer.extend(
        [numpy_helper.from_array(q, base + "_int8"), numpy_helper.from_array(scale.astype(np.float32), base + "_scale")]
    )
    ids, out = node.input[1], node.output[0]
    new = [
        helper.make_node("Gather", [base + "_int8", ids], [out + "_q"], name=node.name + "_q"),
        helper.make_node("Cast", [out + "_q"], [out + "_f"], to=TensorProto.FLOAT, name=node.name + "_cast"),
        helper.make_node("Gather", [base + "_scale", ids], [out + "_s"], name=node.name + "_scale"),
        helper.make_node("Unsqueeze", [out + "_s", base + "_axis"], [out + "_s2"], name=node.name + "_unsq"),
        helper.make_node("Mul", [out + "_f", out + "_s2"], [out], name=node.name + "_mul"),
    ]
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), base + "_axis"))
    index = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    for offset, n in enumerate(new):
        model.graph.node.insert(index + offset, n)
    onnx.save(model, str(target))


def _then_row_gather(first: Builder) -> Builder:
    def build(source: Path, target: Path) -> None:
        tmp = target.with_suffix(".tmp.onnx")
        first(source, tmp)
        _row_gather(tmp, target)
        tmp.unlink()

    return build


def _nbits(*, bits: int = 8, block: int = 32, accuracy_level: int | None = None, symmetric: bool = True) -> Builder:
    """Weight-only blockwise int8 of the weight MatMuls (``MatMulNBits``); the table is left to ``_row_gather``."""

    def build(source: Path, target: Path) -> None:
        model = onnx.load(str(source))
        quantizer = MatMulNBitsQuantizer(
            model,
            bits=bits,
            block_size=block,
            is_symmetric=symmetric,
            accuracy_level=accuracy_level,
            op_types_to_quantize=("MatMul",),
            quant_axes=(("MatMul", 0),),
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)

    return build


def _chosen(source: Path, target: Path) -> None:
    quantize_int8(source, target)


def _calibrated(source: Path, target: Path) -> None:
    """The export's default: FFN output projections quantised where the calibration texts find it harmless."""
    tokenizer = TextTokenizer(source.parent / "tokenizer.json", 512, "query: ")
    quantize_int8(source, target, calibration=Calibration(load_calibration_texts(), tokenizer))


def _static_minmax(source: Path, target: Path) -> None:
    """Static QDQ: uint8 activation ranges calibrated (min/max) on the calibration texts, per-channel int8 weights."""
    tokenizer = TextTokenizer(source.parent / "tokenizer.json", 512, "query: ")
    ids = tokenizer.encode_ids(load_calibration_texts())
    batches = [feeds(tokenizer.pad(ids[i : i + 32]), INPUT_NAMES) for i in range(0, len(ids), 32)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    quantize_static(
        source,
        target,
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    drop_intermediate_shapes(target)


def _smooth_ffn_out(source: Path, target: Path, alpha: float = 0.5) -> None:
    """SmoothQuant on the FFN output projections (x / s, s * W with s = max|x|^a / max|W|^(1-a)), then dynamic-all."""
    tokenizer = TextTokenizer(source.parent / "tokenizer.json", 512, "query: ")
    model = onnx.load(str(source))
    weights = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    chosen = [nodes[name] for name, role, _ in weight_matmuls(model) if role == "ffn_out"]
    peaks = _channel_peaks(source, [n.input[0] for n in chosen], tokenizer)
    for k, node in enumerate(chosen):
        w = numpy_helper.to_array(weights[node.input[1]])  # (K, N)
        s = peaks[node.input[0]] ** alpha / np.maximum(np.abs(w).max(axis=1), 1e-5) ** (1 - alpha)  # (K,)
        s = np.clip(s, 1e-2, 1e2).astype(np.float32)
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], node.input[1]))
        model.graph.initializer.append(numpy_helper.from_array(1.0 / s, f"smooth_{k}"))
        scaled = f"{node.input[0]}_smooth_{k}"
        mul = helper.make_node("Mul", [node.input[0], f"smooth_{k}"], [scaled], name=f"smooth_mul_{k}")
        model.graph.node.insert(list(model.graph.node).index(node), mul)
        node.input[0] = scaled
    smoothed = target.with_suffix(".smooth.onnx")
    onnx.save(model, str(smoothed))
    _dynamic()(smoothed, target)
    smoothed.unlink()


def _channel_peaks(source: Path, tensors: list[str], tokenizer: TextTokenizer) -> dict[str, np.ndarray]:
    """Per channel, the largest |value| of each named tensor over the real tokens of the calibration texts."""
    model = onnx.load(str(source))
    model.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in tensors)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = tokenizer.encode_ids(load_calibration_texts())
    peaks = {t: np.full(1, 1e-5, dtype=np.float32) for t in tensors}
    for start in range(0, len(ids), 32):
        batch = tokenizer.pad(ids[start : start + 32])
        real = batch.attention_mask.astype(bool)  # (batch, seq)
        for name, value in zip(tensors, session.run(tensors, feeds(batch, INPUT_NAMES)), strict=True):
            peaks[name] = np.maximum(peaks[name], np.abs(value[real]).max(axis=0))
    return peaks


VARIANTS: dict[str, Builder] = {
    "dynamic-all": _dynamic(),  # the previous quantize_int8: every weight MatMul and all three Gathers
    "dynamic-matmul-only": _dynamic(gather=False),
    "dynamic-reduce-range": _dynamic(reduce_range=True),
    "dynamic-u8u8": _dynamic(weight_type=QuantType.QUInt8),
    "dynamic-no-ffn-out": _dynamic(exclude="ffn_out"),
    "dynamic-row-gather": _then_row_gather(_dynamic(gather=False)),
    "dynamic-rr-row-gather": _then_row_gather(_dynamic(gather=False, reduce_range=True)),
    "dynamic-no-qkv": _dynamic(exclude="qkv"),
    "dynamic-no-attn-out": _dynamic(exclude="attn_out"),
    "dynamic-no-ffn-in": _dynamic(exclude="ffn_in"),
    "nbits8-b32": _then_row_gather(_nbits(block=32)),
    "nbits8-b32-acc4": _then_row_gather(_nbits(block=32, accuracy_level=4)),
    "nbits8-b128-acc4": _then_row_gather(_nbits(block=128, accuracy_level=4)),
    "chosen": _chosen,
    "calibrated": _calibrated,
    "static-minmax": _static_minmax,
    "smooth-ffn-out": _smooth_ffn_out,
}


def build_variant(name: str, source: Path, work: Path) -> Path:
    """``<work>/<name>.onnx`` (fp32 is the source itself), built when missing."""
    if name == "fp32":
        return source
    target = work / f"{name}.onnx"
    if not target.exists():
        VARIANTS[name](source, target)
    return target


def encoder(model: Path, tokenizer: Path) -> OnnxEncoder:
    tok = TextTokenizer(tokenizer, 512, "query: ")
    return OnnxEncoder(model, tok, 384, model.stem, threads=THREADS, prefer_gpu=False)


def tatoeba(model: Path, tokenizer: Path, langs: list[str], data: Path) -> dict[str, float]:
    results = evaluate_tatoeba(encoder(model, tokenizer), data / "tatoeba", langs)
    return tatoeba_evaluation(results)


def batch_vs_single(model: Path, tokenizer: Path, data: Path) -> float:
    """Max abs difference between 16 texts embedded alone and inside one padded batch of all 16."""
    texts = protocol_texts(data, per_file=8)
    enc = encoder(model, tokenizer)
    alone = np.concatenate([enc.encode([t], 1) for t in texts])
    together = enc.run(enc.tokenizer.pad(enc.tokenizer.encode_ids(texts)))
    return float(np.abs(alone - together).max())


def speeds(models: dict[str, Path], tokenizer: Path, data: Path) -> dict[str, float]:
    """Sentences/s of each model on the protocol texts, measured one after another in this run."""
    texts = protocol_texts(data)
    out = {}
    for name, model in models.items():
        enc = encoder(model, tokenizer)
        out[name] = median_rate(lambda enc=enc: len(enc.encode(texts, 32)))  # type: ignore[misc]
        print(f"  {name}: {out[name]:.1f} sentences/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="the fp32 model.onnx")
    parser.add_argument("--work", type=Path, default=Path("int8work"), help="where variants and results.json go")
    parser.add_argument("--variants", nargs="+", default=["chosen"], choices=["fp32", *VARIANTS])
    parser.add_argument("--langs", nargs="+", default=ALL_LANGS)
    parser.add_argument("--speed", action="store_true", help="also measure sentences/s (with fp32 alongside)")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--markdown", type=Path, help="write the table of every cached result here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the quantisers log every tensor they touch
    tokenizer = args.source.parent / "tokenizer.json"
    args.work.mkdir(parents=True, exist_ok=True)
    cache_path = args.work / "results.json"
    cache: dict[str, dict[str, Any]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def save() -> None:
        cache_path.write_text(json.dumps(cache, indent=1) + "\n")

    langs_key = "+".join(args.langs)
    for name in ["fp32", *[v for v in args.variants if v != "fp32"]]:
        model = build_variant(name, args.source, args.work)
        entry = cache.setdefault(name, {})
        entry["bytes"] = model.stat().st_size
        if not args.no_accuracy and langs_key not in entry.get("tatoeba", {}):
            entry.setdefault("tatoeba", {})[langs_key] = tatoeba(model, tokenizer, args.langs, args.data)
        if "batch_vs_single" not in entry:
            entry["batch_vs_single"] = batch_vs_single(model, tokenizer, args.data)
        save()
        print(name, json.dumps({k: v for k, v in entry.items() if k != "speed"}), flush=True)
    if args.speed:
        names = ["fp32", *[v for v in args.variants if v != "fp32"]]
        rates = speeds({n: build_variant(n, args.source, args.work) for n in names}, tokenizer, args.data)
        for n in names:
            cache[n]["speed"] = {"rate": rates[n], "ratio": rates[n] / rates["fp32"]}
        save()
    if args.markdown:
        args.markdown.write_text(markdown(cache, " ".join(["python -m benchmarks.int8_variants", *sys.argv[1:]])))


def markdown(cache: dict[str, dict[str, Any]], command: str) -> str:
    """One row per variant: accuracy on the widest language set measured, speed, size, batch dependence."""
    lines = [
        "| variant | langs | Tatoeba mean | Δ mean | worst direction Δ | sentences/s | x fp32 | MB | batch-vs-single |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fp32 = cache["fp32"]["tatoeba"]
    for name, entry in cache.items():
        keys = sorted(entry.get("tatoeba", {}), key=lambda k: -len(k))
        if not keys:
            continue
        key = keys[0]
        acc, ref = entry["tatoeba"][key], fp32.get(key, {})
        deltas = {d: acc[d] - ref[d] for d in acc if d != "mean" and d in ref}
        worst = min(deltas, key=lambda d: deltas[d]) if deltas else ""
        speed = entry.get("speed", {})
        lines.append(
            f"| {name} | {key.replace('+', ' ')} | {acc['mean']:.2f}"
            f" | {acc['mean'] - ref.get('mean', acc['mean']):+.2f}"
            f" | {worst} {deltas.get(worst, 0):+.1f} | {speed.get('rate', float('nan')):.0f}"
            f" | {speed.get('ratio', float('nan')):.2f} | {entry['bytes'] / 1e6:.0f} | {entry['batch_vs_single']:.2g} |"
        )
    return "\n".join(lines) + f"\n\n```\n{command}\n```\n"


if __name__ == "__main__":
    main()
