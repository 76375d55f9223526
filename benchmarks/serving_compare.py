"""One run, every backend: bare onnxruntime (fp32, int8), xalign-serve over HTTP (fp32, int8), infinity-emb.

    python -m benchmarks.serving_compare --store store --model xalign-e5-small:1 \
        --infinity-venv /var/tmp/xalign-infinity --infinity-base .cache/xalign/multilingual-e5-small-e5s1

The protocol of ``benchmarks/http_service.py`` for each HTTP backend (63 requests of 32 sentences from 8
clients, base64, median of rounds; 200 sequential one-sentence requests for p50/p95) and of its bare session
(length-sorted batches of 32 over all 2,016 sentences; 200 one-sentence calls). The backends run one after the
other, never at the same time, and the whole sequence is repeated ``--passes`` times (so a drift of the
shared machine spreads over every backend); each figure is the median over the passes. Ratios to bare fp32
sorted are what compare across runs. infinity-emb serves the same version's ``model.onnx`` through its ONNX
(optimum) engine (``benchmarks/infinity_server.py``); it is left out without ``--infinity-venv``.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.http_service import Plan, bare, http_latency, http_throughput, request_batches
from benchmarks.infinity_server import serve_infinity
from benchmarks.protocol import protocol_texts, record
from benchmarks.server_process import serve
from xalign.modelstore.refs import parse_ref
from xalign.modelstore.store import ModelStore

Figures = dict[str, float]
TABLE = Path(__file__).parent / "results" / "serving_compare.md"


@dataclass(frozen=True)
class Endpoint:
    """A running HTTP backend: its URL, the model name to request, and the prefix its clients must add."""

    url: str
    model: str
    text_prefix: str = ""


Backend = Callable[[], AbstractContextManager[Endpoint]]


@contextmanager
def xalign_endpoint(store: Path, model: str, variant: str, log: Path) -> Iterator[Endpoint]:
    """``xalign-serve`` serving ``variant`` of ``model`` (it adds the model's prefix itself)."""
    with serve(store, model, log, flags=["--variant", variant]) as server:
        yield Endpoint(server.url, model)


@contextmanager
def infinity_endpoint(version_dir: Path, base_dir: Path, venv: Path, log: Path) -> Iterator[Endpoint]:
    """infinity-emb's ONNX engine on the version's graph; its clients add the prefix."""
    with serve_infinity(version_dir, base_dir, log, venv=venv) as server:
        yield Endpoint(server.url, server.model, server.text_prefix)


def measure_http(backend: Backend, texts: Sequence[str], plan: Plan) -> Figures:
    """Throughput and one-sentence latency of one backend, started for this measurement and stopped after."""
    with backend() as endpoint:
        sent = [endpoint.text_prefix + t for t in texts]
        rate = http_throughput(endpoint.url, endpoint.model, request_batches(sent, plan), plan, "base64")
        return {"sentences_per_s": round(rate, 1), **http_latency(endpoint.url, endpoint.model, sent, plan, "base64")}


def one_pass(
    backends: dict[str, Backend], bare_runs: dict[str, Callable[[], Figures]], texts: Sequence[str], plan: Plan
) -> dict[str, Figures]:
    """Every bare session, then every HTTP backend, one after the other."""
    figures = {name: run() for name, run in bare_runs.items()}
    for name, backend in backends.items():
        figures[name] = measure_http(backend, texts, plan)
        print(f"  {name}: {figures[name]}", flush=True)
    return figures


def medians(passes: Sequence[dict[str, Figures]]) -> dict[str, Figures]:
    """Per backend and figure, the median over the passes."""
    return {
        name: {key: round(statistics.median(p[name][key] for p in passes), 2) for key in passes[0][name]}
        for name in passes[0]
    }


def ratios(table: dict[str, Figures], reference: str = "bare fp32") -> dict[str, Figures]:
    """Each backend against the bare fp32 session: throughput ratio and p50 difference."""
    ref = table[reference]
    return {
        name: {
            "x_bare_fp32": round(row["sentences_per_s"] / ref["sentences_per_s"], 3),
            "p50_minus_bare_fp32_ms": round(row["p50_ms"] - ref["p50_ms"], 2),
        }
        for name, row in table.items()
    }


def markdown(table: dict[str, Figures], against: dict[str, Figures]) -> list[str]:
    """The results table, one row per backend."""
    lines = [
        "| backend | sentences/s | x bare fp32 sorted | p50 ms | p50 - bare fp32 | p95 ms | p50 ms, httpx client |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in table.items():
        ratio = against[name]
        httpx_p50 = f"{row['p50_httpx_ms']:.2f}" if "p50_httpx_ms" in row else "-"
        lines.append(
            f"| {name} | {row['sentences_per_s']:.1f} | {ratio['x_bare_fp32']:.2f} | {row['p50_ms']:.2f} | "
            f"{ratio['p50_minus_bare_fp32_ms']:+.2f} | {row['p95_ms']:.2f} | {httpx_p50} |"
        )
    return lines


def _bare_run(store: Path, model: str, variant: str, texts: Sequence[str], plan: Plan) -> Callable[[], Figures]:
    def run() -> Figures:
        figures = bare(store, model, variant, texts, plan)
        print(f"  bare {variant}: {figures}", flush=True)
        return {k: figures[k] for k in ("sentences_per_s", "p50_ms", "p95_ms")}

    return run


def backends_of(args: Any) -> tuple[dict[str, Callable[[], Figures]], dict[str, Backend], Plan, list[str]]:
    """What to run, from the command line: bare sessions, HTTP backends, the plan and the texts."""
    plan = Plan(rounds=args.rounds, latency_requests=args.latency_requests)
    texts = protocol_texts(args.data)
    store, model = args.store, args.model
    bare_runs = {f"bare {v}": _bare_run(store, model, v, texts, plan) for v in args.variants}
    backends: dict[str, Backend] = {
        f"xalign HTTP {v}": functools.partial(xalign_endpoint, store, model, v, args.log) for v in args.variants
    }
    if args.infinity_venv is not None:
        version_dir = ModelStore(store).load(parse_ref(model)).path
        backends["infinity-emb 0.0.78 HTTP fp32"] = lambda: infinity_endpoint(
            version_dir, args.infinity_base, args.infinity_venv, args.log.with_suffix(".infinity.log")
        )
    return bare_runs, backends, plan, texts


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``--passes`` passes over every backend, print and record the medians and the ratios."""
    parser = benchmark_parser(__doc__, "xalign-bench-compare.log")
    parser.add_argument("--variants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=Plan.rounds)
    parser.add_argument("--latency-requests", type=int, default=Plan.latency_requests)
    parser.add_argument("--infinity-venv", type=Path, default=None)
    parser.add_argument("--infinity-base", type=Path, default=Path(".cache/xalign/multilingual-e5-small-e5s1"))
    parser.add_argument("--record-as", default="serving_compare")
    args = parser.parse_args(argv)
    bare_runs, backends, plan, texts = backends_of(args)
    passes = []
    for i in range(args.passes):
        print(f"pass {i + 1} of {args.passes}", flush=True)
        passes.append(one_pass(backends, bare_runs, texts, plan))
    table = medians(passes)
    results = {"model": args.model, "plan": vars(plan), "passes": passes, "median": table, "ratios": ratios(table)}
    lines = markdown(table, results["ratios"])
    print("\n".join(lines))
    if args.record_as:
        print(f"recorded in {record(args.record_as, run_command('benchmarks.serving_compare', argv), results)}")
    return results


if __name__ == "__main__":
    main()
