"""The container smoke of deploy/ (run by deploy/smoke.sh): the images built, the compose deployment run for real.

Steps, each timed; the first failure stops the run, and everything is torn down either way:
build ``model``, ``serve`` and ``train`` → bootstrap seeds the store volume, api healthy → embeddings (OpenAI
client), a bitext mine, ``/v1/senses``, an index created and searched → api restarted, the index still there →
``train`` profile: a tiny model seeded, then the trainer publishes and promotes version 2 while a client
streams requests, api serves it → rollback, api serves version 1, no failed request → ``--scale api=2`` on
loopback ports, both ready → ``monitoring`` profile: Prometheus scrapes both → ``down -v``, nothing left.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from engine import PROJECT, Compose, StepError, podman, say, wait_healthy
from images import SERVE_PROBE, TRAIN_PROBE, Built, build, pip_settings, probe, wheel_settings
from traffic import E5, Stream, check_routes, expect, search_top, served_version, wait_for

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
HERE = Path(__file__).resolve().parent


class Smoke:
    """One run: the compose project, its base URL, and what the summary reports."""

    def __init__(self, work: Path, image: str, port: int) -> None:
        self.work, self.image, self.port = work, image, port
        self.log = work / "smoke.log"
        self.data = work / "train-data"
        self.steps: list[tuple[str, float, str]] = []
        self.built: list[Built] = []
        self.stream: Stream | None = None
        self.compose = Compose(Path(sys.executable).with_name("podman-compose"), COMPOSE_FILE, self.log)
        self.compose.variables = {
            "XALIGN_IMAGE": image,
            "XALIGN_HTTP_PORT": f"127.0.0.1:{port}",
            "XALIGN_PROMETHEUS_PORT": f"127.0.0.1:{port + 1}",
            "XALIGN_POLL_INTERVAL_S": "2",
            "XALIGN_THREADS": "1",
            "XALIGN_TRAIN_DATA": str(self.data),
            "XALIGN_TRAIN_RECIPE": "/runs/tiny/tiny_retrain.toml",
            "XALIGN_TRAIN_MODEL": "tiny",
            "XALIGN_TRAIN_RUN": "tiny/run",
        }
        self.base_url = f"http://127.0.0.1:{port}"

    def step(self, name: str, action: Callable[[], str]) -> None:
        """Run one step, timing it; its detail goes into the summary."""
        say(f"{name} ...")
        start = time.monotonic()
        try:
            detail = action()
        except StepError as exc:
            self.steps.append((name, time.monotonic() - start, "FAILED"))
            raise StepError(f"step '{name}' failed: {exc}") from exc
        self.steps.append((name, time.monotonic() - start, detail))
        say(f"{name}: {detail}")

    def build_images(self) -> str:
        """The three targets, the serve image checked for torch and build tools, torch in train the CPU build."""
        services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
        args = {
            services[name]["build"]["target"]: services[name]["build"].get("args", {}) for name in ("api", "trainer")
        }
        self.built = build(REPO, self.image, [*pip_settings(self.work), *wheel_settings()], args, self.log)
        serve = yaml.safe_load(probe(f"{self.image}:serve", SERVE_PROBE, self.log))
        expect(not serve["torch"] and not serve["build_tools"], "the serve image holds no torch, no build tools", serve)
        train = yaml.safe_load(probe(f"{self.image}:train", TRAIN_PROBE, self.log))
        expect(train["torch"].endswith("+cpu") and not train["nvidia"], "train: the CPU torch, no CUDA", train)
        self.serve_largest = serve["largest"]
        return ", ".join(f"{b.target} {b.seconds:.0f} s" for b in self.built)

    def prometheus_image(self) -> str:
        """The compose file's Prometheus image, stood in for by Debian's prometheus when no registry is reachable."""
        tag = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["prometheus"]["image"]
        if podman("images", "-q", tag, log=self.log).strip():
            return f"{tag} is there"
        base = _dockerfile_arg("PYTHON_IMAGE")
        podman(
            "build",
            "-t",
            tag,
            "--build-arg",
            f"BASE={base}",
            "-f",
            str(HERE / "prometheus.Containerfile"),
            str(HERE),
            log=self.log,
            timeout=900,
        )
        return f"{tag}: Debian's prometheus on {base}"

    def up(self) -> str:
        """bootstrap seeds the store volume and exits 0; api becomes healthy (its HEALTHCHECK passes)."""
        self.compose("up", "-d", "--no-build")
        bootstrap = self.compose_logs("bootstrap")
        expect("seeded xalign-e5-small:1" in bootstrap, "bootstrap seeded the store", bootstrap)
        (api,) = self.compose.containers("api")
        seconds = wait_healthy(api, self.log)
        seeded = [line for line in bootstrap.splitlines() if line.startswith("seeded")]
        return f"bootstrap: {'; '.join(seeded)}; api healthy after {seconds:.0f} s"

    def compose_logs(self, service: str) -> str:
        """The output of ``service``'s one-shot container, once it has exited 0.

        podman-compose starts api after bootstrap has exited, but api's ``--requires`` makes podman start
        bootstrap once more with it (a second seed finds the store full and skips): wait for that run too.
        """
        labels = [f"label=com.docker.compose.project={PROJECT}", f"label=com.docker.compose.service={service}"]
        filters = [flag for label in labels for flag in ("--filter", label)]
        (name,) = podman("ps", "-a", *filters, "--format", "{{.Names}}", log=self.log).split()
        code = podman("wait", name, log=self.log, timeout=600).strip()
        logs = podman("logs", name, log=self.log, both=True)
        expect(code == "0", f"{service} exited 0", f"exit {code}: {logs[-2000:]}")
        return logs

    def routes(self) -> str:
        """Embeddings with the OpenAI client, a bitext mine, /v1/senses, an index created and searched."""
        return ", ".join(f"{key}: {value}" for key, value in check_routes(self.base_url).items())

    def restart(self) -> str:
        """The api container restarted; the index is still on its volume and answers the same."""
        before = search_top(self.base_url)
        (api,) = self.compose.containers("api")
        started = podman("inspect", api, "--format", "{{.State.StartedAt}}", log=self.log)
        # Not `restart`: podman refuses to restart a container whose --requires (the one-shot bootstrap) has
        # exited, and podman-compose exits 0 anyway; `start` runs bootstrap again first (its seed skips).
        self.compose("stop", "api")
        self.compose("start", "api")
        restarted = podman("inspect", api, "--format", "{{.State.StartedAt}}", log=self.log)
        expect(restarted != started, "api was restarted", (started, restarted))
        seconds = wait_healthy(api, self.log)
        after = search_top(self.base_url)
        expect(after == before, "the index answers as before the restart", (before, after))
        return f"healthy again after {seconds:.0f} s; search still finds {after!r}"

    def seed_tiny(self) -> str:
        """A tiny model's version 1 and a 4-step recipe for it, written by the trainer image (tests/support)."""
        _training_data(self.data)
        out = self.compose(
            "run", "--rm", "trainer", "python", "/data/seed_tiny.py", "/store", "/runs/tiny", profiles=["train"]
        )
        expect("seeded tiny:1" in out, "seed_tiny published tiny:1", out)
        seconds = wait_for(lambda: served_version(self.base_url, "tiny") == 1, 60, "api serving tiny:1")
        return f"tiny:1 published; api serves it after {seconds:.0f} s"

    def retrain(self) -> str:
        """The trainer publishes and promotes tiny:2 while a client streams; the api swaps to it."""
        self.stream = stream = Stream(self.base_url, "tiny")
        stream.start()
        wait_for(lambda: len(stream.answers) >= 20, 60, "answers from tiny:1")
        out = self.compose("run", "--rm", "trainer", profiles=["train"], timeout=1800)
        expect("tiny:2 is production" in out, "the trainer promoted tiny:2", out[-2000:])
        seconds = wait_for(lambda: "tiny:2" in stream.models(), 60, "the swap to tiny:2")
        at_two = len(stream.models())
        wait_for(lambda: len(stream.models()) >= at_two + 10, 60, "answers from tiny:2")
        return f"tiny:2 promoted (gate passed); served {seconds:.0f} s after the trainer exited"

    def rollback(self) -> str:
        """The README's rollback; the api serves tiny:1 again; the stream had no failed request."""
        stream = self.stream
        assert stream is not None
        at = len(stream.models())
        self.compose("run", "--rm", "--no-deps", "bootstrap", "xalign-store", "--store", "/store", "rollback", "tiny")
        seconds = wait_for(lambda: "tiny:1" in stream.models()[at:], 60, "the rollback to tiny:1")
        back = len(stream.models())
        wait_for(lambda: len(stream.models()) >= back + 10, 60, "answers after the rollback")
        stream.stop.set()
        stream.join(timeout=90)
        expect(set(stream.models()[back:]) == {"tiny:1"}, "only tiny:1 after the rollback", stream.models()[back:])
        expect(not stream.failures(), "no failed request while streaming", stream.failures()[:20])
        return f"tiny:1 served {seconds:.0f} s after the rollback; {self.requests()}"

    def requests(self) -> str:
        """The stream's counts."""
        answers = self.stream.answers if self.stream else []
        searches = sum(1 for route, _, _ in answers if route.endswith("/search"))
        failed = len(self.stream.failures()) if self.stream else 0
        return f"{len(answers)} requests ({searches} searches) streamed, {failed} failed"

    def scale(self, profiles: tuple[str, ...] = ()) -> list[str]:
        """``up -d --scale api=2`` on ephemeral loopback ports; both replicas healthy and serving; their URLs."""
        self.compose.variables["XALIGN_HTTP_PORT"] = "127.0.0.1:"
        self.compose("up", "-d", "--no-build", "--scale", "api=2", profiles=profiles)
        replicas = self.compose.containers("api")
        expect(len(replicas) == 2, "two api replicas", replicas)
        urls = []
        for replica in replicas:
            wait_healthy(replica, self.log)
            url = f"http://127.0.0.1:{self.compose.host_port(replica)}"
            expect(httpx.get(f"{url}/ready", timeout=10).status_code == 200, f"{replica} ready", url)
            expect(served_version(url, E5) is not None, f"{replica} serves {E5}", url)
            urls.append(url)
        return urls

    def monitoring(self) -> str:
        """The monitoring profile: Prometheus finds both replicas (DNS) and scrapes each."""
        self.scale(profiles=("monitoring",))
        url = f"http://127.0.0.1:{self.port + 1}/api/v1/targets"

        def both_up() -> bool:
            try:
                targets = httpx.get(url, timeout=10).json()["data"]["activeTargets"]
            except (httpx.HTTPError, ValueError, KeyError):
                return False
            return len(targets) == 2 and all(t["health"] == "up" for t in targets)

        seconds = wait_for(both_up, 180, "Prometheus scraping both replicas")
        return f"2 targets up after {seconds:.0f} s"

    def teardown(self) -> str:
        """``down -v`` with every profile, then what it missed removed by label; nothing of the project left.

        podman-compose's ``down`` removes the containers the file names at scale 1: a replica of ``--scale
        api=2`` (and the volumes and network it holds) stays, so they are removed by the project's label.
        """
        if self.stream is not None:
            self.stream.stop.set()
        self.compose("down", "-v", profiles=["train", "monitoring"])
        missed = self.leftovers()
        label = f"label=com.docker.compose.project={PROJECT}"
        if missed["container"]:
            podman("rm", "-f", "--depend", *missed["container"], log=self.log)  # dependents first
        for kind in ("volume", "network"):
            if missed[kind]:
                podman(kind, "rm", "-f", *missed[kind], log=self.log)
        left = self.leftovers()
        expect(not any(left.values()), "nothing of the project left", left)
        shutil.rmtree(self.data, ignore_errors=True)
        after_down = ", ".join(n for names in missed.values() for n in names)
        note = f"; left by `down -v` and removed by {label}: {after_down}" if after_down else ""
        return "containers, volumes and network removed" + note

    def leftovers(self) -> dict[str, list[str]]:
        """The project's containers, volumes and networks that exist now, by name."""
        formats = {
            "container": ("ps", "-a", "--format", "{{.Names}}"),
            "volume": ("volume", "ls", "--format", "{{.Name}}"),
            "network": ("network", "ls", "--format", "{{.Name}}"),
        }
        return {
            kind: [n for n in podman(*args, log=self.log).split() if n.startswith((f"{PROJECT}_", f"{PROJECT}-"))]
            for kind, args in formats.items()
        }


def _dockerfile_arg(name: str) -> str:
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"ARG {name}="):
            return line.partition("=")[2]
    raise StepError(f"no ARG {name} in the Dockerfile")


def _training_data(data: Path) -> None:
    """The trainer's /data: tests/support's tiny BERT and recipe, Multi30k rows, the Tatoeba sample, the seeder."""
    shutil.rmtree(data, ignore_errors=True)
    (data / "support").mkdir(parents=True)
    for helper in ("tiny_models.py", "retrain_recipe.py"):
        shutil.copy(REPO / "tests" / "support" / helper, data / "support")
    shutil.copytree(REPO / "tests" / "data" / "trainer" / "multi30k", data / "multi30k")
    shutil.copytree(REPO / "tests" / "data" / "tatoeba_mini", data / "tatoeba")
    shutil.copy(HERE / "seed_tiny.py", data)
    for path in [data, *data.rglob("*")]:  # the trainer runs as uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)


def summary(smoke: Smoke, started: float, error: str | None) -> str:
    """The lines printed at the end: images, steps, requests, verdict."""
    lines = ["", "== xalign container smoke ==", "images (podman build):"]
    lines += [f"  {b.tag:<16} {b.size_mb:>7.0f} MB   built in {b.seconds:>5.0f} s" for b in smoke.built]
    if getattr(smoke, "serve_largest", None):
        lines.append("  serve image, largest parts (MB): " + ", ".join(f"{n} {s}" for n, s in smoke.serve_largest))
    lines.append("steps:")
    lines += [f"  {name:<34} {seconds:>6.0f} s  {detail}" for name, seconds, detail in smoke.steps]
    lines.append(f"client: {smoke.requests()}")
    verdict = "FAILED: " + error if error else "PASSED"
    lines.append(f"total {time.monotonic() - started:.0f} s; {verdict}")
    return "\n".join(lines)


def main() -> int:
    """Run every step; the summary; 0 only if all passed and the teardown left nothing."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="folder for the log and the trainer's data")
    parser.add_argument("--image", default=os.environ.get("XALIGN_IMAGE", "xalign"), help="image name (tags: targets)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("XALIGN_SMOKE_PORT", "18000")))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    smoke, started, error = Smoke(args.work, args.image, args.port), time.monotonic(), None
    steps: list[tuple[str, Callable[[], str]]] = [
        ("build model, serve, train", smoke.build_images),
        ("prometheus image", smoke.prometheus_image),
        ("bootstrap, api healthy", smoke.up),
        ("embeddings, mine, senses, index", smoke.routes),
        ("api restarted, index kept", smoke.restart),
        ("train profile: tiny:1 seeded", smoke.seed_tiny),
        ("train profile: retrain, promote", smoke.retrain),
        ("rollback", smoke.rollback),
        ("--scale api=2, both ready", lambda: " ".join(smoke.scale())),
        ("monitoring: Prometheus scrapes both", smoke.monitoring),
    ]
    try:
        for name, action in steps:
            smoke.step(name, action)
    except StepError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug or an unexpected answer: still torn down and summarised
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    finally:
        try:
            smoke.step("teardown (down -v)", smoke.teardown)
        except StepError as exc:
            error = error or str(exc)
    print(summary(smoke, started, error.splitlines()[0] if error else None))
    if error:
        print(f"\n{error}\nlog: {smoke.log}", file=sys.stderr)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
