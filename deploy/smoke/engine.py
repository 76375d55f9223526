"""The container engine as deploy/smoke/scenario.py drives it: podman-compose on deploy/docker-compose.yml.

Every compose call names the project (``xalign-smoke``), the compose file and the profiles, with the
``XALIGN_*`` variables of the scenario in its environment, exactly as a user's shell would pass them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = "xalign-smoke"


class StepError(RuntimeError):
    """A step of the smoke failed; the message says what was expected and shows the output."""


def run(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 900, log: Path, both: bool = False
) -> str:
    """Run ``command`` to the end; its standard output (``both``: and error), or a StepError with the tail.

    Everything it printed is appended to ``log``.
    """
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
    result = subprocess.run(
        list(command), env=env, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    output = result.stdout + result.stderr
    with log.open("a", encoding="utf-8") as out:
        out.write(output)
    if result.returncode != 0:
        raise StepError(f"`{' '.join(command)}` exited {result.returncode}:\n{output[-3000:]}")
    return output if both else str(result.stdout)


@dataclass
class Compose:
    """podman-compose on one compose file, as project ``PROJECT``, with ``variables`` as the shell's."""

    tool: Path
    file: Path
    log: Path
    variables: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, profiles: Sequence[str] = (), timeout: float = 900) -> str:
        """``podman-compose -p PROJECT -f FILE [--profile P]... ARGS``; its standard output."""
        flags = [flag for profile in profiles for flag in ("--profile", profile)]
        command = [str(self.tool), "-p", PROJECT, "-f", str(self.file), *flags, *args]
        return run(command, env={**os.environ, **self.variables}, timeout=timeout, log=self.log, both=True)

    def containers(self, service: str) -> list[str]:
        """The running containers of ``service``, by name, in replica order."""
        labels = [f"label=com.docker.compose.project={PROJECT}", f"label=com.docker.compose.service={service}"]
        out = podman(
            "ps", *(a for label in labels for a in ("--filter", label)), "--format", "{{.Names}}", log=self.log
        )
        return sorted(out.split())

    def host_port(self, container: str, port: int = 8000) -> int:
        """The loopback port ``container``'s ``port`` is published on."""
        published = podman("port", container, f"{port}/tcp", log=self.log).split()[0]
        return int(published.rpartition(":")[2])


def podman(*args: str, log: Path, timeout: float = 300, both: bool = False) -> str:
    """``podman ARGS``; its standard output (``both``: and error)."""
    return run(["podman", *args], timeout=timeout, log=log, both=both)


def wait_healthy(container: str, log: Path, timeout: float = 300) -> float:
    """Run the image's HEALTHCHECK until it passes (podman runs it on demand: no systemd timer here); seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        result = subprocess.run(
            ["podman", "healthcheck", "run", container], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:  # `podman healthcheck run` exits 0 only when the check passed
            return time.monotonic() - start
        state = podman("inspect", container, "--format", "{{.State.Status}}", log=log).strip()
        if state not in {"running", "created"}:
            logs = subprocess.run(
                ["podman", "logs", "--tail", "40", container], capture_output=True, text=True, check=False
            )
            raise StepError(f"{container} is {state}:\n{logs.stdout}{logs.stderr}")
        time.sleep(2)
    raise StepError(f"{container}: not healthy within {timeout} s")


def say(message: str) -> None:
    """One progress line, flushed (the smoke runs for many minutes)."""
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
