"""fp32 graphs of one checkpoint and the int8 variants of the exported one: op counts, speed, Tatoeba.

    python -m benchmarks.graph_variants --checkpoint .cache/xalign/multilingual-e5-small-e5s1 \\
        --tokenizer store/xalign-e5-small/1/tokenizer.json --work /tmp/graphwork \\
        --store-graph store/xalign-e5-small/1/model.onnx \\
        --int8 dynamic-all chosen calibrated static-minmax smooth-ffn-out \\
        --markdown benchmarks/results/graph_variants.md

Graphs: ``store-graph`` (a published ``model.onnx``, e.g. one exported before ``export/onnx_graph.py`` dropped
the intermediate shapes), ``torchscript`` (``torch.onnx.export(..., dynamo=False)`` of the same weights, what
optimum's exporter does), ``fp32`` (the exporter as it is) and ``fp32-shapes`` (the same graph with the
shapes onnx infers put back). Op counts are of the file and of what onnxruntime's CPU session runs after its
optimisations. int8 variants are ``benchmarks/int8_variants.py``'s, built from ``fp32``.

Speed is made for a shared machine: the protocol texts (``--per-file`` of each protocol file), length-sorted
batches of 32; every batch runs on every model in turn, ``--rounds`` times, alternating the order, and each
model's time is the sum over batches of its fastest run. ``cpu1``: 1 thread, process CPU time (what the graph
costs, robust to other load); ``wall2``: 2 threads, wall time (the protocol's setting). Only ratios compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch

from benchmarks.int8_variants import ALL_LANGS, VARIANTS, build_variant, encoder, tatoeba
from benchmarks.protocol import DEFAULT_DATA, protocol_texts, record
from xalign.export.dual_encoder import export_dual_encoder, load_dual_encoder
from xalign.export.onnx_graph import example_batch
from xalign.export.parity_texts import load_parity_texts
from xalign.modelstore.artifacts import INPUT_NAMES, SENTENCE_EMBEDDING
from xalign.runtime.session import feeds
from xalign.runtime.tokenization import TextTokenizer

GRAPHS = ("store-graph", "torchscript", "fp32", "fp32-shapes")
# Speed modes: threads and clock (process CPU time: what the graph costs; wall time: what a caller waits).
MODES: dict[str, tuple[int, Callable[[], float]]] = {
    "cpu1": (1, time.process_time),
    "wall1": (1, time.perf_counter),
    "cpu2": (2, time.process_time),
    "wall2": (2, time.perf_counter),
}


def export_torchscript(checkpoint: Path, target: Path) -> None:
    """The TorchScript export of the same module (batch and sequence axes dynamic)."""
    module = load_dual_encoder(checkpoint)
    example = example_batch(int(module.encoder_config.vocab_size), first_id=5)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the deprecation of this exporter
        torch.onnx.export(
            module,
            example,
            str(target),
            input_names=list(INPUT_NAMES),
            output_names=[SENTENCE_EMBEDDING],
            opset_version=18,
            dynamo=False,
            dynamic_axes={INPUT_NAMES[0]: axes, INPUT_NAMES[1]: axes, SENTENCE_EMBEDDING: {0: "batch"}},
        )


def with_shapes(source: Path, target: Path) -> None:
    """``source`` with every intermediate shape onnx can infer recorded (what the dynamo exporter writes)."""
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(source)), data_prop=True), str(target))


def build_graphs(args: argparse.Namespace) -> dict[str, Path]:
    """Every fp32 graph asked for, built into ``--work`` when missing."""
    work: Path = args.work
    paths = {name: work / f"graph-{name}.onnx" for name in GRAPHS}
    paths["fp32"] = work / "fp32.onnx"  # int8_variants builds from it, tokenizer.json beside it
    builders: dict[str, Callable[[], object]] = {
        "torchscript": lambda: export_torchscript(args.checkpoint, paths["torchscript"]),
        "fp32": lambda: export_dual_encoder(load_dual_encoder(args.checkpoint), paths["fp32"]),
        "fp32-shapes": lambda: with_shapes(paths["fp32"], paths["fp32-shapes"]),
    }
    if args.store_graph is not None:
        builders["store-graph"] = lambda: shutil.copyfile(args.store_graph, paths["store-graph"])
    for name, build in builders.items():
        if not paths[name].exists():
            print(f"building {name}", flush=True)
            build()
    return {name: path for name, path in paths.items() if path.exists()}


def op_counts(model: Path) -> dict[str, dict[str, int]]:
    """Op types of the file and of the graph onnxruntime's CPU session runs (after ORT_ENABLE_ALL)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    optimised = model.with_name(f"{model.stem}.ort.onnx")
    options.optimized_model_filepath = str(optimised)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", optimised.name + ".data"
    )
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    counts = {
        "file": Counter(n.op_type for n in onnx.load(str(model), load_external_data=False).graph.node),
        "onnxruntime": Counter(n.op_type for n in onnx.load(str(optimised), load_external_data=False).graph.node),
    }
    optimised.unlink()
    optimised.with_name(optimised.name + ".data").unlink(missing_ok=True)
    return {kind: dict(count.most_common()) for kind, count in counts.items()}


def speeds(
    models: dict[str, Path], tokenizer: TextTokenizer, texts: list[str], rounds: int, modes: list[str]
) -> dict[str, Any]:
    """Sentences/s per model and mode (``MODES``): fastest run per batch, interleaved."""
    ids = sorted(tokenizer.encode_ids(texts), key=len)
    batches = [feeds(tokenizer.pad(ids[i : i + 32]), INPUT_NAMES) for i in range(0, len(ids), 32)]
    out: dict[str, Any] = {}
    for mode in modes:
        threads, clock = MODES[mode]
        sessions = {name: session(path, threads) for name, path in models.items()}
        best = {name: [float("inf")] * len(batches) for name in models}
        for r in range(rounds):
            for i, batch in enumerate(batches):
                order = list(models) if (r + i) % 2 == 0 else list(models)[::-1]
                for name in order:
                    start = clock()
                    sessions[name].run(None, batch)
                    best[name][i] = min(best[name][i], clock() - start)
        out[mode] = {name: len(texts) / sum(times) for name, times in best.items()}
        print(mode, {k: round(v, 1) for k, v in out[mode].items()}, flush=True)
    return out


def session(model: Path, threads: int) -> ort.InferenceSession:
    """A CPU session as ``runtime/session.py`` opens one (all optimisations, one op at a time)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def accuracy(name: str, model: Path, reference: Path, tokenizer: Path, data: Path) -> dict[str, Any]:
    """Tatoeba (5 languages, both directions) and the cosine to ``reference`` on the parity texts."""
    texts = load_parity_texts()
    ref = encoder(reference, tokenizer).encode(texts, 32)
    mine = encoder(model, tokenizer).encode(texts, 32)
    cosine = (ref * mine).sum(axis=1)  # (texts,) both normalised
    print(f"accuracy of {name}", flush=True)
    return {
        "tatoeba": tatoeba(model, tokenizer, ALL_LANGS, data),
        "min_cosine": float(cosine.min()),
        "mean_cosine": float(cosine.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="the transformers folder")
    parser.add_argument("--tokenizer", type=Path, required=True, help="the published tokenizer.json")
    parser.add_argument("--work", type=Path, default=Path("graphwork"))
    parser.add_argument("--store-graph", type=Path, help="a published model.onnx to compare with")
    parser.add_argument("--int8", nargs="*", default=["calibrated"], choices=sorted(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["cpu1", "wall2"], choices=sorted(MODES))
    parser.add_argument("--speed-only", nargs="*", help="time only these variants (default: all)")
    parser.add_argument("--per-file", type=int, default=250, help="protocol texts per file (2 files)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    args.work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.tokenizer, args.work / "tokenizer.json")
    graphs = build_graphs(args)
    int8 = {name: build_variant(name, graphs["fp32"], args.work) for name in args.int8}
    cache_path = args.work / "graph_results.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    tokenizer = args.work / "tokenizer.json"
    for name, path in {**graphs, **int8}.items():
        entry = cache.setdefault(name, {})
        entry |= {"op_counts": op_counts(path), "mb": path.stat().st_size / 1e6}
        if "tatoeba" not in entry and name not in {"fp32-shapes", "store-graph"}:
            entry |= accuracy(name, path, graphs["fp32"], tokenizer, args.data)
        cache_path.write_text(json.dumps(cache, indent=1) + "\n")
    texts = protocol_texts(args.data, per_file=args.per_file)
    timed = {name: path for name, path in {**graphs, **int8}.items() if not args.speed_only or name in args.speed_only}
    measured = speeds(timed, TextTokenizer(tokenizer, 512, "query: "), texts, args.rounds, args.modes)
    command = " ".join(["python -m benchmarks.graph_variants", *sys.argv[1:]])
    results = {"variants": cache, "speed": measured, "texts": len(texts), "rounds": args.rounds}
    print(f"recorded in {record('graph_variants', command, results)}")
    if args.markdown:
        args.markdown.write_text(markdown(cache, measured, command), encoding="utf-8")


def markdown(cache: dict[str, Any], measured: dict[str, Any], command: str) -> str:
    """The speed and accuracy table (ratios against ``fp32``; Δ Tatoeba against fp32) and the command."""
    modes = list(measured)
    ref = cache["fp32"]["tatoeba"]
    lines = [
        "| variant | ops file | ops onnxruntime | "
        + " | ".join(f"x fp32 {m}" for m in modes)
        + " | Tatoeba | Δ | worst Δ | min cos | MB |",
        "|---|---|---|" + "---|" * len(modes) + "---|---|---|---|---|",
    ]
    for name in dict.fromkeys([*GRAPHS, *cache]):  # the graphs first, then the int8 variants
        entry = cache.get(name)
        if entry is None or name not in measured[modes[0]]:
            continue
        ops = {kind: sum(counts.values()) for kind, counts in entry["op_counts"].items()}
        acc = entry.get("tatoeba")
        deltas = {d: acc[d] - ref[d] for d in acc if d != "mean"} if acc else {}
        worst = min(deltas, key=lambda d: deltas[d]) if deltas else ""
        accuracy_cells = (
            f"{acc['mean']:.2f} | {acc['mean'] - ref['mean']:+.2f} | {worst} {deltas[worst]:+.1f}"
            f" | {entry['min_cosine']:.4f}"
            if acc
            else "- | - | - | -"
        )
        ratios = " | ".join(f"{measured[m][name] / measured[m]['fp32']:.2f}" for m in modes)
        counts = f"{ops['file']} | {ops['onnxruntime']}"
        lines.append(f"| {name} | {counts} | {ratios} | {accuracy_cells} | {entry['mb']:.0f} |")
    versions = f"onnxruntime {ort.__version__}, torch {torch.__version__}"
    return "\n".join(lines) + f"\n\n{versions}\n\n```\n{command}\n```\n"


if __name__ == "__main__":
    main()
