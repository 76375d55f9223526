"""Where a one-sentence request's time goes inside ``xalign-serve``: the median of each stage, against the bare session.

    python -m benchmarks.request_path --store /work/bench_store17 --model xalign-e5-small:1 --variant fp32

The server runs in a subprocess, instrumented by this module (``--serve``): a few of its functions are wrapped
to take a timestamp, and it appends each request's marks to a JSON-lines file. The client sends the
protocol's sentences one at a time over one kept-alive ``http.client`` connection (the lean client of
``http_service.py``), after the bare session (same file, 2 threads, spinning) has embedded them one at a time.
Stages, in order: the app's first middleware, FastAPI's dependency solving (after routing, body reading and
JSON parsing), the route's own code, the batcher's submit (tokenising, admission), the queue, the
inference thread's session run, the way back to the route, the response body, and the response's send and
logging. The marks cost a few microseconds each; the stage medians do not add up to the median total.
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.command_line import benchmark_parser, run_command
from benchmarks.protocol import THREADS, protocol_texts, record
from benchmarks.server_process import serve

MARKS = ("start", "solve", "route", "submit", "enqueue", "infer", "inferred", "back", "respond", "end")
_current: dict[str, float] = {}


def _mark(name: str) -> None:
    _current.setdefault(name, time.perf_counter())


def _wrap_sync(owner: Any, attribute: str, before: str, after: str | None = None) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _mark(before)
        result = original(*args, **kwargs)
        if after is not None:
            _mark(after)
        return result

    setattr(owner, attribute, wrapped)


def _wrap_async(owner: Any, attribute: str, before: str, after: str | None = None) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        _mark(before)
        result = await original(*args, **kwargs)
        if after is not None:
            _mark(after)
        return result

    setattr(owner, attribute, wrapped)


def instrument(out: Path) -> None:
    """Wrap the request path's functions to mark each stage; append each embeddings request's marks to ``out``."""
    import fastapi.routing  # noqa: PLC0415 - only in the instrumented server

    from xalign.service import middleware  # noqa: PLC0415
    from xalign.service.engine import batcher  # noqa: PLC0415
    from xalign.service.routes import embeddings  # noqa: PLC0415

    observe = middleware.RequestObservability.handle

    async def handle(self: Any, scope: Any, receive: Any, send: Any) -> None:
        _current.clear()
        _mark("start")

        async def marked_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                _mark("respond")
            await send(message)

        await observe(self, scope, receive, marked_send)
        _mark("end")
        if scope.get("path") == "/v1/embeddings":
            # A line per request, written after its end: uvicorn ends a server stopped by SIGTERM by raising the
            # signal again, so nothing registered to run at exit would.
            with out.open("a", encoding="utf-8") as lines:
                lines.write(json.dumps(_current) + "\n")

    middleware.RequestObservability.handle = handle  # type: ignore[method-assign]
    _wrap_async(fastapi.routing, "solve_dependencies", "solve")
    _wrap_sync(embeddings, "_texts", "route")
    _wrap_async(batcher.Batcher, "submit", "submit", "back")
    _wrap_sync(batcher.Batcher, "_enqueue", "enqueue")
    _wrap_sync(batcher.Batcher, "_infer", "infer", "inferred")


def stage_medians(requests: Sequence[dict[str, float]], skip: int) -> dict[str, float]:
    """Median ms of each stage (``a->b``) and of the whole (``total``), over the requests after ``skip``."""
    rows = [r for r in requests[skip:] if all(m in r for m in MARKS)]
    stages = itertools.pairwise(MARKS)
    medians = {f"{a}->{b}": round(statistics.median((r[b] - r[a]) * 1000 for r in rows), 3) for a, b in stages}
    medians["total"] = round(statistics.median((r["end"] - r["start"]) * 1000 for r in rows), 3)
    return medians


def _timed_ms(call: Callable[[str], object], texts: Sequence[str], skip: int) -> float:
    durations = []
    for text in texts:
        start = time.perf_counter()
        call(text)
        durations.append(time.perf_counter() - start)
    return round(statistics.median(durations[skip:]) * 1000, 3)


def bare_p50(store: Path, model: str, variant: str, texts: Sequence[str], skip: int) -> float:
    """p50 ms of the bare session embedding one sentence at a time (onnxruntime's default spinning)."""
    from xalign.runtime.onnx_encoder import OnnxEncoder  # noqa: PLC0415

    encoder = OnnxEncoder.from_store(store, model, variant, threads=THREADS, spinning="always")
    return _timed_ms(lambda text: encoder.encode([text]), texts, skip)


def served(args: Any, texts: Sequence[str], skip: int) -> tuple[float, dict[str, float]]:
    """Client p50 ms over HTTP, and the server's stage medians."""
    marks = args.log.with_suffix(".marks.json")
    marks.unlink(missing_ok=True)
    launcher = [sys.executable, "-m", "benchmarks.request_path", "--serve", str(marks), "--"]
    flags = ["--variant", args.variant, "--log-level", "warning"]
    with serve(args.store, args.model, args.log, flags=flags, launcher=launcher) as server:
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        client = _timed_ms(lambda text: _embed(connection, args.model, text), texts, skip)
        connection.close()
    lines = marks.read_text(encoding="utf-8").splitlines()
    return client, stage_medians([json.loads(line) for line in lines], skip)


def _embed(connection: http.client.HTTPConnection, model: str, text: str) -> None:
    body = json.dumps({"model": model, "input": [text], "encoding_format": "base64"})
    connection.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"answered {response.status}: {response.read()[:200]!r}")
    response.read()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Bare p50, client p50 and the server's stage medians for ``--requests`` one-sentence requests."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--serve"]:  # the instrumented server: --serve MARKS -- <xalign-serve flags>
        instrument(Path(arguments[1]))
        from xalign.service.cli import main as serve_main  # noqa: PLC0415

        serve_main(arguments[3:])
        return {}
    parser = benchmark_parser(__doc__, "xalign-bench-request-path.log")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--requests", type=int, default=220, help="one-sentence requests, warm-ups included")
    parser.add_argument("--warmup", type=int, default=20, help="first requests left out of the medians")
    args = parser.parse_args(arguments)
    sentences = protocol_texts(args.data)
    texts, skip = [sentences[i % len(sentences)] for i in range(args.requests)], args.warmup
    bare = bare_p50(args.store, args.model, args.variant, texts, skip)
    client, stages = served(args, texts, skip)
    results = {"model": args.model, "variant": args.variant, "bare_p50_ms": bare, "client_p50_ms": client,
               "client_minus_bare_ms": round(client - bare, 3), "server_stages_ms": stages}  # fmt: skip
    print(json.dumps(results, indent=2))
    record(f"request_path_{args.variant}", run_command("benchmarks.request_path", argv), results)
    return results


if __name__ == "__main__":
    main()
