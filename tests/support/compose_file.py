"""Reading deploy/docker-compose.yml the way Docker Compose does, for tests that run its services without Docker.

Only what these files use: ``${VAR}`` and ``${VAR:-default}`` interpolation (``:-`` also replaces an empty
value, as in Compose), ``$$`` for a literal dollar, YAML merge keys, list-form commands and mapping-form
environments, and ``source:target[:mode]`` volumes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yml"
COMPOSE_GPU = REPO / "deploy" / "docker-compose.gpu.yml"

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    """The parsed compose file (merge keys applied by the YAML loader)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with its variables replaced from ``env``; an unset variable without a default fails."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group("name"), match.group("default")
        if env.get(name):
            return env[name]
        if default is None:
            raise KeyError(f"${{{name}}} is not set and has no default")
        return default

    return _VARIABLE.sub(value, text)


@dataclass(frozen=True)
class Volume:
    """One ``source:target[:mode]`` mount: a named volume or a host path, the path in the container, the mode."""

    source: str
    target: str
    mode: str = "rw"

    @property
    def read_only(self) -> bool:
        """Whether the container sees the mount read-only (mode ``ro``, alone or among options such as ``z``)."""
        return "ro" in self.mode.split(",")


@dataclass(frozen=True)
class Service:
    """A service as its container would see it: command, environment and mounts, all interpolated."""

    name: str
    command: list[str]
    environment: dict[str, str]
    volumes: list[Volume]


def service(compose: Mapping[str, Any], name: str, env: Mapping[str, str]) -> Service:
    """Service ``name`` of ``compose`` with ``env`` as the shell's variables."""
    raw = compose["services"][name]
    command = [interpolate(str(part), env) for part in raw.get("command", [])]
    environment = {key: interpolate(str(value), env) for key, value in (raw.get("environment") or {}).items()}
    volumes = [Volume(*interpolate(spec, env).split(":")) for spec in raw.get("volumes", [])]
    return Service(name, command, environment, volumes)
