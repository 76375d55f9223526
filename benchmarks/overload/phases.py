"""The overload benchmark's phases: baseline, load with probe and gauges, recovery, and a disconnect."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import time
from collections.abc import Sequence
from contextlib import suppress
from multiprocessing.queues import Queue
from typing import Any

import httpx

from benchmarks.overload.report import percentile
from benchmarks.overload.workload import Answer, Gauges, LoadBodies, Plan, load_bodies, one_text_body, window

_GAUGE = re.compile(r'^(xalign_queue_(?:tokens|texts))\{model="[^"]*"\} ([0-9.eE+-]+)$', re.MULTILINE)


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


async def _one_text(client: httpx.AsyncClient, model: str, cut: list[Answer] | None = None) -> Answer:
    body = json.dumps(one_text_body(model)).encode()
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
    body = {"model": model, "input": window(texts, 0, plan.disconnect_texts), "encoding_format": "base64"}
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
