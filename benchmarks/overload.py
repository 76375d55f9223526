"""Overload of ``xalign-serve`` on the real model (issue 19's scenario): admission, probe latency, recovery.

    python -m benchmarks.overload --store store --label after
    python -m benchmarks.overload --store store --label before --checkout /tmp/xalign-old

The server runs in a subprocess (``--threads 2``, DESIGN.md §7); ``--checkout DIR`` runs another checkout's
server (``python -m service.cli`` with DIR as working folder and ``PYTHONPATH``) with this venv, so that the
code before a change can be measured with the same client. Phases, one after the other:

1. baseline: 20 sequential one-text embeddings after 3 warm-ups, p50;
2. overload: ``--clients`` (32) clients for ``--seconds`` (60) in a child process, half mining 200 x 200 inline
   sides, half embedding 200 texts, back to back (a refusal is retried after 0.1 s, an impatient client); each
   answer's status, latency and ``Retry-After``; client timeout 120 s; ``/metrics`` polled every 0.5 s for
   ``xalign_queue_texts`` and ``xalign_queue_tokens``; meanwhile a probe sends one text every second;
3. recovery: once the load process has cancelled its requests and closed its connections, one text every
   0.5 s until an answer comes back under 2 x the baseline p50 (at most ``--recovery-limit-s``), then 10 s more;
4. disconnect: one 512-text request alone (its cost), then one whose client closes its socket after 1 s,
   followed at once by a one-text request: that request's latency.

Texts are the protocol's Tatoeba lines (German as mining sources, English as targets), generated text when
the data folder is absent. Each run is recorded under its ``--label`` in ``results/<name>.json``, and
``results/<name>.md`` is rewritten with every recorded run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from benchmarks.protocol import DEFAULT_DATA, REPO, THREADS

RESULTS = REPO / "benchmarks" / "results"
ONE_TEXT = "The cat sleeps on the warm windowsill."
_GAUGE = re.compile(r'^(xalign_queue_(?:tokens|texts))\{model="[^"]*"\} ([0-9.eE+-]+)$', re.MULTILINE)


@dataclass(frozen=True)
class Plan:
    """The counts of one run."""

    clients: int = 32
    seconds: float = 60.0
    side: int = 200
    embed_texts: int = 200
    baseline: int = 20
    warmup: int = 3
    client_timeout_s: float = 120.0
    retry_pause_s: float = 0.1
    probe_every_s: float = 1.0
    poll_every_s: float = 0.5
    recovery_every_s: float = 0.5
    recovery_limit_s: float = 300.0
    settle_s: float = 10.0
    disconnect_texts: int = 512
    disconnect_after_s: float = 1.0


class Answer(NamedTuple):
    """One request as its client saw it; ``status`` 0 with ``note`` timeout, error or cut (load ended)."""

    kind: str
    status: int
    seconds: float
    retry_after: bool
    note: str = ""


@dataclass
class Gauges:
    """The queue gauges polled from ``/metrics``: (seconds since the load started, texts, tokens)."""

    series: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    failed_polls: int = 0


@dataclass(frozen=True)
class LoadBodies:
    """Pre-encoded request bodies of the load clients (JSON bytes), one per client."""

    mine: list[bytes]
    embed: list[bytes]


# ---------------------------------------------------------------------------------------------- texts


def load_texts(data_dir: Path, count: int = 2000) -> tuple[list[str], list[str]]:
    """German and English Tatoeba lines (``count`` each at most); generated sentences if the files are absent."""
    sides: list[list[str]] = []
    for suffix in ("deu", "eng"):
        path = data_dir / "tatoeba" / f"tatoeba.deu-eng.{suffix}"
        if not path.exists():
            return _generated(count, 0), _generated(count, 1)
        with path.open(encoding="utf-8") as handle:
            sides.append([line.rstrip("\n") for _, line in zip(range(count), handle, strict=False)])
    return sides[0], sides[1]


def _generated(count: int, seed: int) -> list[str]:
    words = ["the", "a", "cat", "dog", "house", "river", "sees", "finds", "near", "under", "old", "green", "small"]
    return [" ".join(words[(seed + i * 7 + j * 3) % len(words)] for j in range(5 + i % 11)) for i in range(count)]


def _window(texts: Sequence[str], start: int, n: int) -> list[str]:
    return [texts[(start + i) % len(texts)] for i in range(n)]


def load_bodies(model: str, src: Sequence[str], tgt: Sequence[str], plan: Plan) -> LoadBodies:
    """Each client's body: mining sides from src/tgt, embeddings from both, shifted per client."""
    mine, embed = [], []
    for i in range(plan.clients):
        sides = {"src": {"texts": _window(src, i * plan.side, plan.side)}}
        sides["tgt"] = {"texts": _window(tgt, i * plan.side, plan.side)}
        mine.append(json.dumps({"model": model, **sides}).encode())
        texts = _window([*src, *tgt], i * plan.embed_texts, plan.embed_texts)
        embed.append(json.dumps({"model": model, "input": texts, "encoding_format": "base64"}).encode())
    return LoadBodies(mine=mine, embed=embed)


def _one_text_body(model: str) -> dict[str, Any]:
    return {"model": model, "input": [ONE_TEXT], "encoding_format": "base64"}


# ---------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(
    store: Path, model: str, port: int, data_dir: Path, *, checkout: Path | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """``xalign-serve`` of this venv, or ``python -m service.cli`` of ``checkout``, with the run's flags."""
    script = Path(sys.executable).with_name("xalign-serve")
    base = [str(script)] if checkout is None and script.exists() else [sys.executable, "-m", "service.cli"]
    flags = ["--store", str(store.resolve()), "--models", f'["{model}"]', "--threads", str(THREADS)]
    flags += ["--host", "127.0.0.1", "--port", str(port), "--poll-interval-s", "0", "--data-dir", str(data_dir)]
    return [*base, *flags, "--log-level", "warning", *extra]


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server was not ready after {timeout} s")


@contextmanager
def serve(
    store: Path, model: str, log: Path, checkout: Path | None, extra: Sequence[str] = ()
) -> Iterator[tuple[str, list[str]]]:
    """Run the server on a free loopback port, its output in ``log``; yield its URL and command."""
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="xalign-overload-"))
    command = serve_command(store, model, port, data_dir, checkout=checkout, extra=extra)
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout.resolve())
    cwd = checkout.resolve() if checkout is not None else REPO
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        try:
            _wait_ready(f"http://127.0.0.1:{port}", proc, timeout=300)
            yield f"http://127.0.0.1:{port}", command
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            shutil.rmtree(data_dir, ignore_errors=True)


def _git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False).stdout


def served_code(base_url: str, checkout: Path | None) -> dict[str, Any]:
    """Which code answers: the checkout's revision, uncommitted changes to it, and its queue gauges."""
    folder = checkout or REPO
    changed = _git(folder, "status", "--porcelain", "--", "service", "modelstore").split()
    metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        "checkout": str(folder),
        "revision": _git(folder, "rev-parse", "--short", "HEAD").strip() + ("+uncommitted" if changed else ""),
        "queue_tokens_gauge": "xalign_queue_tokens" in metrics,
    }


# ---------------------------------------------------------------------------------------------- load process


async def _send(client: httpx.AsyncClient, kind: str, path: str, body: bytes, cut: list[Answer]) -> Answer:
    """POST ``body``; a request cancelled in flight is added to ``cut`` with the time it had waited."""
    start = time.monotonic()
    try:
        response = await client.post(path, content=body, headers={"content-type": "application/json"})
    except httpx.TimeoutException:
        return Answer(kind, 0, time.monotonic() - start, False, "timeout")
    except httpx.TransportError:
        return Answer(kind, 0, time.monotonic() - start, False, "error")
    except asyncio.CancelledError:
        cut.append(Answer(kind, 0, time.monotonic() - start, False, "cut"))
        raise
    return Answer(kind, response.status_code, time.monotonic() - start, "retry-after" in response.headers)


async def _client_loop(client: httpx.AsyncClient, kind: str, body: bytes, plan: Plan, answers: list[Answer]) -> None:
    path = "/v1/bitext/mine" if kind == "mine" else "/v1/embeddings"
    while True:
        answer = await _send(client, kind, path, body, answers)
        answers.append(answer)
        if answer.status != 200:
            await asyncio.sleep(plan.retry_pause_s)


async def _load(base_url: str, bodies: LoadBodies, plan: Plan) -> list[Answer]:
    answers: list[Answer] = []
    clients = [httpx.AsyncClient(base_url=base_url, timeout=plan.client_timeout_s) for _ in range(plan.clients)]
    tasks = []
    for i, client in enumerate(clients):
        kind, body = ("mine", bodies.mine[i]) if i % 2 == 0 else ("embed", bodies.embed[i])
        tasks.append(asyncio.create_task(_client_loop(client, kind, body, plan, answers)))
    await asyncio.sleep(plan.seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:  # closes every connection: the clients have gone
        await client.aclose()
    return answers


def load_process(base_url: str, bodies: LoadBodies, plan: Plan, out: Queue[list[Answer]]) -> None:
    """The load clients (child process, so their work does not delay the probe's event loop)."""
    out.put(asyncio.run(_load(base_url, bodies, plan)))


# ---------------------------------------------------------------------------------------------- probes


async def _one_text(client: httpx.AsyncClient, model: str, cut: list[Answer] | None = None) -> Answer:
    body = json.dumps(_one_text_body(model)).encode()
    return await _send(client, "probe", "/v1/embeddings", body, [] if cut is None else cut)


async def baseline(base_url: str, model: str, plan: Plan) -> list[float]:
    """Latencies (s) of sequential one-text requests on an idle server, after warm-ups."""
    async with httpx.AsyncClient(base_url=base_url, timeout=plan.client_timeout_s) as client:
        for _ in range(plan.warmup):
            await _one_text(client, model)
        answers = [await _one_text(client, model) for _ in range(plan.baseline)]
    return [a.seconds for a in answers if a.status == 200]


async def _probe_loop(base_url: str, model: str, plan: Plan, answers: list[Answer]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=plan.client_timeout_s) as client:
        while True:
            start = time.monotonic()
            answers.append(await _one_text(client, model, answers))
            await asyncio.sleep(max(0.0, plan.probe_every_s - (time.monotonic() - start)))


def parse_gauges(text: str) -> tuple[float | None, float | None]:
    """The largest ``xalign_queue_texts`` and ``xalign_queue_tokens`` in a ``/metrics`` page (None: absent)."""
    found: dict[str, float] = {}
    for name, value in _GAUGE.findall(text):
        found[name] = max(found.get(name, 0.0), float(value))
    return found.get("xalign_queue_texts"), found.get("xalign_queue_tokens")


async def _poll_loop(base_url: str, plan: Plan, gauges: Gauges, started: float) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while True:
            try:
                texts, tokens = parse_gauges((await client.get("/metrics")).text)
                gauges.series.append((round(time.monotonic() - started, 2), texts, tokens))
            except httpx.TransportError:
                gauges.failed_polls += 1
            await asyncio.sleep(plan.poll_every_s)


async def overload(base_url: str, model: str, bodies: LoadBodies, plan: Plan) -> dict[str, Any]:
    """The load in a child process; the probe here; the answers of both once the load has ended."""
    out: Queue[list[Answer]] = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=load_process, args=(base_url, bodies, plan, out))
    probes: list[Answer] = []
    process.start()
    probe = asyncio.create_task(_probe_loop(base_url, model, plan, probes))
    answers = await asyncio.to_thread(out.get)
    ended = time.monotonic()
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    await asyncio.to_thread(process.join, 30)
    return {"answers": answers, "probes": probes, "ended": ended}


async def recovery(base_url: str, model: str, plan: Plan, threshold_s: float, ended: float) -> dict[str, Any]:
    """One text every 0.5 s from the load's end until one answers under ``threshold_s``, then ``settle_s`` more."""
    points: list[tuple[float, int, float]] = []  # (seconds since the load ended at the answer, status, latency)
    recovered: float | None = None
    async with httpx.AsyncClient(base_url=base_url, timeout=plan.client_timeout_s) as client:
        while True:
            now = time.monotonic() - ended
            if (recovered is None and now > plan.recovery_limit_s) or (
                recovered is not None and now > recovered + plan.settle_s
            ):
                break
            answer = await _one_text(client, model)
            points.append((round(time.monotonic() - ended, 3), answer.status, round(answer.seconds, 4)))
            if recovered is None and answer.status == 200 and answer.seconds < threshold_s:
                recovered = points[-1][0]
            await asyncio.sleep(max(0.0, plan.recovery_every_s - answer.seconds))
    after = [s for t, status, s in points if recovered is not None and t > recovered and status == 200]
    return {"threshold_s": round(threshold_s, 4), "recovered_after_s": recovered, "points": points, "after": after}


async def _abandon(base_url: str, body: bytes, after_s: float) -> None:
    """Send a request on a raw socket and close the socket after ``after_s`` without reading the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    await asyncio.sleep(after_s)
    writer.close()
    with suppress(OSError):
        await writer.wait_closed()


async def disconnect(base_url: str, model: str, texts: Sequence[str], plan: Plan) -> dict[str, Any]:
    """A large request's own cost, then the latency of one text sent right after a client abandons it."""
    body = {"model": model, "input": _window(texts, 0, plan.disconnect_texts), "encoding_format": "base64"}
    async with httpx.AsyncClient(base_url=base_url, timeout=plan.client_timeout_s) as client:
        start = time.monotonic()
        alone = await client.post("/v1/embeddings", json=body)
        alone_s = time.monotonic() - start
        await asyncio.sleep(1.0)
        await _abandon(base_url, json.dumps(body).encode(), plan.disconnect_after_s)
        probe = await _one_text(client, model)
    return {
        "large_alone": {"status": alone.status_code, "seconds": round(alone_s, 3)},
        "one_text_after_disconnect": {"status": probe.status, "seconds": round(probe.seconds, 3), "note": probe.note},
    }


# ---------------------------------------------------------------------------------------------- summary


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (inclusive method); None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1])


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarize_kind(answers: Sequence[Answer], kind: str, seconds: float) -> dict[str, Any]:
    """Counts per outcome, p50/p99 of the 200s, successes per minute and refusals without Retry-After."""
    mine = [a for a in answers if a.kind == kind]
    ok = [a.seconds for a in mine if a.status == 200]
    refusals = [a for a in mine if a.status in (429, 503)]
    return {
        "requests": len(mine),
        "200": len(ok),
        "429": sum(1 for a in mine if a.status == 429),
        "503": sum(1 for a in mine if a.status == 503),
        "other_status": sum(1 for a in mine if a.status not in (0, 200, 429, 503)),
        "timeout": sum(1 for a in mine if a.note == "timeout"),
        "error": sum(1 for a in mine if a.note == "error"),
        "cut_at_end": sum(1 for a in mine if a.note == "cut"),
        "refusals_without_retry_after": sum(1 for a in refusals if not a.retry_after),
        "p50_s": _rounded(percentile(ok, 50)),
        "p99_s": _rounded(percentile(ok, 99)),
        "refusal_p50_s": _rounded(percentile([a.seconds for a in refusals], 50)),
        "refusal_p99_s": _rounded(percentile([a.seconds for a in refusals], 99)),
        "max_answer_s": _rounded(max((a.seconds for a in mine if a.note != "cut"), default=None)),
        "successes_per_min": round(len(ok) * 60 / seconds, 1) if seconds > 0 else None,
    }


def summarize_gauges(gauges: Gauges) -> dict[str, Any]:
    """Largest queue gauges seen (None where the server has no such gauge)."""
    texts = [t for _, t, _ in gauges.series if t is not None]
    tokens = [k for _, _, k in gauges.series if k is not None]
    return {
        "max_queue_texts": int(max(texts)) if texts else None,
        "max_queue_tokens": int(max(tokens)) if tokens else None,
        "polls": len(gauges.series),
        "failed_polls": gauges.failed_polls,
    }


def summarize(run: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The figures of one run from its raw phases."""
    probes = run["probes"]
    ok = [a.seconds for a in probes if a.status == 200]
    recovery_after = run["recovery"]["after"]
    return {
        "baseline_p50_s": _rounded(percentile(run["baseline"], 50), 4),
        "mine": summarize_kind(run["answers"], "mine", plan.seconds),
        "embed": summarize_kind(run["answers"], "embed", plan.seconds),
        "queue": summarize_gauges(run["gauges"]),
        "probe": {
            "requests": len(probes),
            "200": len(ok),
            "p50_s": _rounded(percentile(ok, 50)),
            "p99_s": _rounded(percentile(ok, 99)),
            "max_s": _rounded(max((a.seconds for a in probes), default=None)),
        },
        "recovery_s": run["recovery"]["recovered_after_s"],
        "recovery_limit_s": plan.recovery_limit_s,
        "after_recovery_p50_s": _rounded(percentile(recovery_after, 50), 4),
        "after_recovery_max_s": _rounded(max(recovery_after, default=None), 4),
        "disconnect": run["disconnect"],
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}{unit}" if value < 1 else f"{value:,.2f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def _kind_rows(kind: str) -> list[tuple[str, Any]]:
    def counts(s: dict[str, Any]) -> str:
        k = s[kind]
        return f"{k['requests']:,}: {k['200']:,} / {k['429']:,} / {k['503']:,} / {k['other_status']:,}"

    def failures(s: dict[str, Any]) -> str:
        k = s[kind]
        return f"{k['timeout']} / {k['error']} / {k['cut_at_end']} / {k['refusals_without_retry_after']}"

    def latency(s: dict[str, Any]) -> str:
        return f"{_fmt(s[kind]['p50_s'], ' s')} / {_fmt(s[kind]['p99_s'], ' s')}"

    def refused(s: dict[str, Any]) -> str:
        return f"{_fmt(s[kind].get('refusal_p50_s'), ' s')} / {_fmt(s[kind].get('refusal_p99_s'), ' s')}"

    return [
        (f"{kind}: requests: 200 / 429 / 503 / other", counts),
        (f"{kind}: client timeouts / errors / cut at end / refusals without Retry-After", failures),
        (f"{kind}: p50 / p99 of the 200s", latency),
        (f"{kind}: p50 / p99 of the 429s and 503s", refused),
        (f"{kind}: longest answer", lambda s: _fmt(s[kind]["max_answer_s"], " s")),
    ]


def _rows() -> list[tuple[str, Any]]:
    def recovered(s: dict[str, Any]) -> str:
        if s["recovery_s"] is None:
            return f"not within {s['recovery_limit_s']:.0f} s"
        return _fmt(s["recovery_s"], " s")

    def disc(s: dict[str, Any]) -> str:
        one = s["disconnect"]["one_text_after_disconnect"]
        return f"{_fmt(one['seconds'], ' s')} ({one['status'] or one['note']})"

    return [
        ("one text, idle: p50 (baseline)", lambda s: _fmt(s["baseline_p50_s"], " s")),
        *_kind_rows("mine"),
        ("mining successes per minute", lambda s: _fmt(s["mine"]["successes_per_min"])),
        *_kind_rows("embed"),
        (
            "max queue gauge: texts / tokens",
            lambda s: f"{_fmt(s['queue']['max_queue_texts'])} / {_fmt(s['queue']['max_queue_tokens'])}",
        ),
        ("probe during load: 200s of requests", lambda s: f"{s['probe']['200']} of {s['probe']['requests']}"),
        (
            "probe during load: p50 / p99 / max",
            lambda s: (
                f"{_fmt(s['probe']['p50_s'], ' s')} / "
                f"{_fmt(s['probe']['p99_s'], ' s')} / {_fmt(s['probe']['max_s'], ' s')}"
            ),
        ),
        ("recovery: one text under 2 x baseline p50 after", recovered),
        (
            "the 10 s after recovery: p50 / max",
            lambda s: f"{_fmt(s['after_recovery_p50_s'], ' s')} / {_fmt(s['after_recovery_max_s'], ' s')}",
        ),
        ("512 texts alone", lambda s: _fmt(s["disconnect"]["large_alone"]["seconds"], " s")),
        ("one text right after a 512-text client left at 1 s", disc),
    ]


def markdown_table(runs: dict[str, dict[str, Any]]) -> str:
    """One column per recorded run (label), one row per figure."""
    labels = list(runs)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for title, cell in _rows():
        lines.append(f"| {title} | " + " | ".join(cell(runs[label]["summary"]) for label in labels) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- run


async def run_phases(base_url: str, model: str, texts: tuple[list[str], list[str]], plan: Plan) -> dict[str, Any]:
    """Baseline, overload with probe and gauges, recovery, disconnect; the raw figures of each."""
    base = await baseline(base_url, model, plan)
    threshold = 2 * (percentile(base, 50) or 0.0)
    gauges = Gauges()
    poller = asyncio.create_task(_poll_loop(base_url, plan, gauges, time.monotonic()))
    bodies = load_bodies(model, texts[0], texts[1], plan)
    load = await overload(base_url, model, bodies, plan)
    back = await recovery(base_url, model, plan, threshold, load["ended"])
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    gone = await disconnect(base_url, model, [*texts[0], *texts[1]], plan)
    return {"baseline": base, **load, "gauges": gauges, "recovery": back, "disconnect": gone}


def _scenario(plan: Plan) -> str:
    return (
        f"Written by `benchmarks/overload.py` (its docstring says how to run it): {plan.clients} clients for "
        f"{plan.seconds:.0f} s, half mining {plan.side} x {plan.side} inline sides, half embedding "
        f"{plan.embed_texts} texts, back to back (a refusal retried after a short pause); a one-text probe every "
        f"{plan.probe_every_s:.0f} s meanwhile; `/metrics` every {plan.poll_every_s} s; the server with "
        f"{THREADS} onnxruntime threads and its default settings otherwise."
    )


def _plan_words(plan: dict[str, Any]) -> str:
    full = Plan(**plan)
    return f"{full.clients} clients x {full.seconds:.0f} s, refusals retried after {full.retry_pause_s} s"


def record(name: str, label: str, entry: dict[str, Any]) -> tuple[Path, Path]:
    """Add ``entry`` under ``label`` to ``results/<name>.json`` and rewrite ``results/<name>.md``'s table."""
    out = RESULTS / f"{name}.json"
    runs = json.loads(out.read_text(encoding="utf-8"))["runs"] if out.exists() else {}
    runs[label] = entry
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")
    table = RESULTS / f"{name}.md"
    head = [f"# {name}: issue 19's overload on the real model", "", _scenario(Plan(**entry.get("plan", {}))), ""]
    commands = [
        f"- **{label}** ({r['when']}, {r['machine']}, served code {r['served_code']['revision']}, "
        f"{_plan_words(r.get('plan', {}))}): `{r['command']}`"
        for label, r in runs.items()
    ]
    # Hand-written notes (from a "## Notes" heading on) survive a rerun.
    kept = table.read_text(encoding="utf-8").partition("\n## Notes")[1:] if table.exists() else ("", "")
    body = "\n".join([*head, markdown_table(runs), "", *commands, ""])
    table.write_text(body + "".join(kept), encoding="utf-8")
    return out, table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("store"))
    parser.add_argument("--model", default="xalign-e5-small")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding tatoeba/")
    parser.add_argument("--checkout", type=Path, help="run this checkout's server (python -m service.cli)")
    parser.add_argument("--clients", type=int, default=Plan.clients)
    parser.add_argument("--seconds", type=float, default=Plan.seconds)
    parser.add_argument(
        "--retry-pause-s", type=float, default=Plan.retry_pause_s, help="a load client's pause after a refusal"
    )
    parser.add_argument("--recovery-limit-s", type=float, default=Plan.recovery_limit_s)
    parser.add_argument("--serve-flag", action="append", default=[], help="extra server flag (repeatable)")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "xalign-overload-serve.log")
    parser.add_argument("--label", default="current", help="the run's column in the results")
    parser.add_argument("--record-as", default="overload", help="results/<name>.json and .md; empty: do not record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every phase against a fresh server, print the summary, record it unless ``--record-as ''``."""
    args = parse_args(argv)
    plan = Plan(
        clients=args.clients,
        seconds=args.seconds,
        retry_pause_s=args.retry_pause_s,
        recovery_limit_s=args.recovery_limit_s,
    )
    texts = load_texts(args.data)
    with serve(args.store, args.model, args.log, args.checkout, args.serve_flag) as (base_url, command):
        code = served_code(base_url, args.checkout)
        print(f"serving {code}", flush=True)
        raw = asyncio.run(run_phases(base_url, args.model, texts, plan))
    entry = {
        "command": " ".join(["python -m benchmarks.overload", *(sys.argv[1:] if argv is None else argv)]),
        "server_command": command,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "served_code": code,
        "plan": asdict(plan),
        "summary": summarize(raw, plan),
        "queue_series": raw["gauges"].series,
        "recovery_points": raw["recovery"]["points"],
        "probe_latencies": [(a.status, round(a.seconds, 4), a.note) for a in raw["probes"]],
    }
    print(json.dumps(entry["summary"], indent=2))
    if args.record_as:
        print("recorded in", *record(args.record_as, args.label, entry))
    return entry


if __name__ == "__main__":
    main()
