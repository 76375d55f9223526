"""HTTP throughput and latency of ``xalign-serve`` against a bare onnxruntime session, in one run.

    python -m benchmarks.http_service --store store --model xalign-e5-small

The server runs in a subprocess with 2 onnxruntime threads; this process is the client.
Throughput: 63 requests of 32 sentences from 8 concurrent clients, one warm-up round, median of 3.
Latency: 200 sequential one-sentence requests after 10 warm-ups, p50 and p95. The bare session
(same model file, 2 threads, length-sorted batches of 32) is measured in the same run, one after the
other so the two never share the cores, and the ratios are what to compare across runs. The bare session
is timed twice: sorting all texts at once (the protocol's reference, an upper bound that no server meets
for requests arriving over time) and one batch per request (what a client calling onnxruntime would do).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.protocol import THREADS, median_rate, protocol_texts, record
from benchmarks.server_process import serve
from xalign.runtime.onnx_encoder import OnnxEncoder


@dataclass(frozen=True)
class Plan:
    """The counts of the protocol; the smoke test shrinks them."""

    requests: int = 63
    batch: int = 32
    concurrency: int = 8
    rounds: int = 3
    latency_requests: int = 200
    warmup: int = 10


def request_batches(texts: Sequence[str], plan: Plan) -> list[list[str]]:
    """``plan.requests`` lists of ``plan.batch`` sentences, taken from ``texts`` in order (wrapping round)."""
    return [[texts[(r * plan.batch + j) % len(texts)] for j in range(plan.batch)] for r in range(plan.requests)]


def _embed(client: httpx.Client, model: str, texts: list[str], encoding: str) -> int:
    body = {"model": model, "input": texts, "encoding_format": encoding}
    response = client.post("/v1/embeddings", json=body)
    response.raise_for_status()
    data = response.json()["data"]
    if len(data) != len(texts):
        raise RuntimeError(f"asked for {len(texts)} vectors, got {len(data)}")
    return len(data)


def http_throughput(base_url: str, model: str, batches: list[list[str]], plan: Plan, encoding: str) -> float:
    """Sentences per second with ``plan.concurrency`` clients sending ``batches``: warm-up, median of rounds."""
    limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
    with (
        httpx.Client(base_url=base_url, timeout=120, limits=limits) as client,
        ThreadPoolExecutor(plan.concurrency) as pool,
    ):

        def one_round() -> int:
            return sum(pool.map(lambda texts: _embed(client, model, texts, encoding), batches))

        return median_rate(one_round, plan.rounds)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of durations in seconds, as milliseconds."""
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return {"p50_ms": round(statistics.median(seconds) * 1000, 2), "p95_ms": round(cuts[18] * 1000, 2)}


def _timed(call: Any, texts: Sequence[str], plan: Plan) -> dict[str, float]:
    """Time ``call(text)`` on one sentence at a time, after the warm-ups."""
    for i in range(plan.warmup):
        call(texts[i % len(texts)])
    durations = []
    for i in range(plan.latency_requests):
        start = time.perf_counter()
        call(texts[i % len(texts)])
        durations.append(time.perf_counter() - start)
    return percentiles_ms(durations)


def http_latency(base_url: str, model: str, texts: Sequence[str], plan: Plan, encoding: str) -> dict[str, float]:
    """p50/p95 of sequential one-sentence requests over one kept-alive connection: ``p50_ms``/``p95_ms`` with
    the standard library's ``http.client``, ``p50_httpx_ms``/``p95_httpx_ms`` with httpx.

    The bare session has no client at all, so the figure compared with it is the lean client's: httpx spends
    about 1 ms of Python per request on this CPU (measured against http.client on the same server), which is
    the client's latency, not the server's. Both are recorded; the lean one is what the server adds.
    """
    url = httpx.URL(base_url)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=60)
    try:
        lean = _timed(lambda text: _embed_lean(connection, model, text, encoding), texts, plan)
    finally:
        connection.close()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        heavy = _timed(lambda text: _embed(client, model, [text], encoding), texts, plan)
    return {**lean, **{key.replace("_ms", "_httpx_ms"): value for key, value in heavy.items()}}


def _embed_lean(connection: http.client.HTTPConnection, model: str, text: str, encoding: str) -> int:
    body = json.dumps({"model": model, "input": [text], "encoding_format": encoding})
    connection.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200 or len(json.loads(payload)["data"]) != 1:
        raise RuntimeError(f"one-sentence request answered {response.status}: {payload[:200]!r}")
    return 1


def bare(store: Path, model: str, variant: str, texts: Sequence[str], plan: Plan) -> dict[str, float]:
    """The bare onnxruntime session on the same texts: sentences/s (batches of 32), and one-sentence latency."""
    # onnxruntime's own default (threads always spinning): the session as a user would open it.
    encoder = OnnxEncoder.from_store(store, model, variant, threads=THREADS, spinning="always")
    batches = request_batches(texts, plan)
    flat = [t for batch in batches for t in batch]
    # Sorting all texts at once pads least: an upper bound no server can reach for requests arriving over time.
    rate = median_rate(lambda: len(encoder.encode(flat, plan.batch)), plan.rounds)
    # Each request's texts as one batch, as a client calling onnxruntime itself would run them.
    per_request = median_rate(lambda: sum(len(encoder.encode(b, plan.batch)) for b in batches), plan.rounds)
    return {
        "sentences_per_s": round(rate, 1),
        "sentences_per_s_request_batches": round(per_request, 1),
        **_timed(lambda text: encoder.encode([text]), texts, plan),
    }


def measure(
    store: Path, model: str, variant: str, *, texts: Sequence[str], plan: Plan, log: Path, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Service then bare session, one after the other on the same cores; their ratios."""
    encoding = "base64"  # what the OpenAI client asks for by default
    with serve(store, model, log, flags=["--variant", variant, *extra]) as server:
        rate = http_throughput(server.url, model, request_batches(texts, plan), plan, encoding)
        service = {"sentences_per_s": round(rate, 1), **http_latency(server.url, model, texts, plan, encoding)}
    reference = bare(store, model, variant, texts, plan)
    return {
        "model": model,
        "variant": variant,
        "threads": THREADS,
        "encoding_format": encoding,
        "serve_flags": list(extra),
        "plan": vars(plan),
        "service": service,
        "bare_onnxruntime": reference,
        "throughput_ratio": round(service["sentences_per_s"] / reference["sentences_per_s"], 3),
        "throughput_ratio_vs_request_batches": round(
            service["sentences_per_s"] / reference["sentences_per_s_request_batches"], 3
        ),
        "p50_delta_ms": round(service["p50_ms"] - reference["p50_ms"], 2),
        "p95_delta_ms": round(service["p95_ms"] - reference["p95_ms"], 2),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the counts default to the protocol's."""
    parser = benchmark_parser(__doc__, "xalign-bench-serve.log")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--requests", type=int, default=Plan.requests)
    parser.add_argument("--rounds", type=int, default=Plan.rounds)
    parser.add_argument("--latency-requests", type=int, default=Plan.latency_requests)
    parser.add_argument("--warmup", type=int, default=Plan.warmup)
    parser.add_argument(
        "--serve-flag", action="append", default=[], help="extra xalign-serve flag (repeatable), e.g. --ort-spinning"
    )
    parser.add_argument("--record-as", default="http_service", help="results/<name>.json; empty: do not record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the figures and ratios, and record them unless ``--record-as ''``."""
    args = parse_args(argv)
    plan = Plan(requests=args.requests, rounds=args.rounds, latency_requests=args.latency_requests, warmup=args.warmup)
    texts = protocol_texts(args.data)
    results = measure(args.store, args.model, args.variant, texts=texts, plan=plan, log=args.log, extra=args.serve_flag)
    print(f"service: {results['service']}")
    print(f"bare onnxruntime: {results['bare_onnxruntime']}")
    print(
        f"throughput ratio {results['throughput_ratio']} (bar ≥ 0.85), p50 delta {results['p50_delta_ms']} ms (bar ≤ 3)"
    )
    print(f"throughput ratio against request-sized bare batches {results['throughput_ratio_vs_request_batches']}")
    if args.record_as:
        print(f"recorded in {record(args.record_as, run_command('benchmarks.http_service', argv), results)}")
    return results


if __name__ == "__main__":
    main()
