"""The images of the smoke: the Dockerfile's targets built with podman, their sizes, and what they must not hold.

Build-time pip settings come from the host (``pip_settings``): the CA bundle pip verifies with (a
TLS-inspecting proxy) and a mirror's index URL, passed as the Dockerfile's build secrets, so nothing of this
machine stays in an image. A folder of wheels (pip's find-links here) is the ``wheels`` build context, and
``TORCH_INDEX`` the index torch's own dependencies come from when the CPU wheel is in that folder.
"""

from __future__ import annotations

import configparser
import os
import time
from dataclasses import dataclass
from pathlib import Path

from engine import podman, run

TARGETS = ("model", "serve", "train")
PYPI = "https://pypi.org/simple"

# Run in the serve image: what it must not hold, and what its size is made of (MB, largest first).
SERVE_PROBE = r"""
import importlib.util, json, os, shutil, site, subprocess
def mb(path):
    out = subprocess.run(["du", "-sm", path], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else 0
packages = site.getsitepackages()[0]
sizes = {name: mb(os.path.join(packages, name)) for name in os.listdir(packages)}
sizes["/opt/xalign/store"] = mb("/opt/xalign/store")
sizes["/usr (system: Debian, Python)"] = mb("/usr") - mb("/usr/local")
print(json.dumps({
    "torch": importlib.util.find_spec("torch") is not None,
    "build_tools": [tool for tool in ("gcc", "cc", "g++", "make") if shutil.which(tool)],
    "largest": sorted(sizes.items(), key=lambda item: -item[1])[:8],
}))
"""
TRAIN_PROBE = r"""
import importlib.metadata as m, json, torch
names = [d.metadata["Name"] for d in m.distributions()]
print(json.dumps({"torch": torch.__version__, "nvidia": sorted(n for n in names if n.startswith("nvidia"))}))
"""


@dataclass(frozen=True)
class Built:
    """One built target: its tag, build seconds and size in MB."""

    target: str
    tag: str
    seconds: float
    size_mb: float


def pip_settings(work: Path) -> list[str]:
    """``podman build`` flags carrying the host's pip CA bundle and http(s) index URL as build secrets."""
    config = configparser.ConfigParser()
    config.read([Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), Path.home() / ".config/pip/pip.conf"])
    cert = os.environ.get("PIP_CERT") or config.get("global", "cert", fallback="") or os.environ.get("SSL_CERT_FILE")
    index = str(os.environ.get("PIP_INDEX_URL") or config.get("global", "index-url", fallback=""))
    lines = ["[global]"]
    flags: list[str] = []
    if cert and Path(cert).is_file():
        lines.append("cert = /etc/pip-ca.pem")
        flags += ["--secret", f"id=pip-ca,src={cert}"]
    if index.startswith(("http://", "https://")):
        lines.append(f"index-url = {index}")
    conf = work / "pip.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [*flags, "--secret", f"id=pip.conf,src={conf}"]


def wheel_settings() -> list[str]:
    """The ``wheels`` context and TORCH_INDEX: XALIGN_SMOKE_WHEELS / XALIGN_TORCH_INDEX, else pip's find-links.

    With a torch CPU wheel in the folder, torch's dependencies come from the host's index (PyPI by default)
    and the wheel wins over the same version there; without one, the Dockerfile's default (the CPU index).
    """
    wheels = os.environ.get("XALIGN_SMOKE_WHEELS") or os.environ.get("PIP_FIND_LINKS", "").split(" ")[0]
    flags = ["--build-context", f"wheels={wheels}"] if wheels and Path(wheels).is_dir() else []
    index = os.environ.get("XALIGN_TORCH_INDEX")
    if index is None and flags and any(Path(wheels).glob("torch-*+cpu-*.whl")):
        index = os.environ.get("PIP_INDEX_URL", PYPI)
    return [*flags, *(["--build-arg", f"TORCH_INDEX={index}"] if index else [])]


def build(repo: Path, image: str, flags: list[str], args: dict[str, dict[str, str]], log: Path) -> list[Built]:
    """Build ``model``, ``serve`` and ``train`` (tags ``IMAGE:TARGET``, build ``args`` per target), timing each."""
    evaldata = os.environ.get("XALIGN_EVAL_DATA")
    context = ["--build-context", f"evaldata={evaldata}"] if evaldata else []
    built = []
    for target in TARGETS:
        tag = f"{image}:{target}"
        start = time.monotonic()
        passed = [flag for key, value in args.get(target, {}).items() for flag in ("--build-arg", f"{key}={value}")]
        command = ["podman", "build", "--target", target, "-t", tag, *flags, *passed, *context, str(repo)]
        run(command, timeout=5400, log=log)
        size = float(podman("image", "inspect", tag, "--format", "{{.Size}}", log=log)) / 1e6
        built.append(Built(target, tag, time.monotonic() - start, size))
    return built


def probe(tag: str, script: str, log: Path) -> str:
    """Run ``script`` with the image's Python, as the image's user; its output."""
    return podman("run", "--rm", "--network", "none", tag, "python", "-c", script, log=log)
