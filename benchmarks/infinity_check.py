"""Check that infinity (``benchmarks/infinity_server.py``) serves the vectors xalign's encoder gives.

    .venv/bin/python -m benchmarks.infinity_check --store STORE --venv /var/tmp/xalign-infinity

Starts infinity on the newest version of ``--model`` in ``--store``, asks for a few texts (with the
manifest's prefix, as ``benchmarks/infinity_server.py`` requires) as ``float`` and as ``base64``, and
prints each vector's cosine to ``OnnxEncoder.encode`` of the same texts; exits 1 if one is below 0.999.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from benchmarks.infinity_server import DEFAULT_VENV, URL_PREFIX, InfinityServer, serve_infinity
from benchmarks.protocol import REPO
from xalign.modelstore.refs import parse_ref
from xalign.modelstore.store import ModelStore
from xalign.runtime.onnx_encoder import OnnxEncoder

TEXTS = ("Hallo Welt", "hello world", "Der Hund schläft unter dem Tisch.", "Où est la gare ?")
MIN_COSINE = 0.999
DEFAULT_CACHE = REPO / ".cache" / "xalign" / "multilingual-e5-small-e5s1"


def decode(item: dict[str, object]) -> np.ndarray:
    """One ``data`` item's vector: a float list, or base64 of little-endian float32."""
    embedding = item["embedding"]
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)


def infinity_vectors(server: InfinityServer, texts: Sequence[str], encoding: str) -> np.ndarray:
    """infinity's (n, dim) vectors of ``texts`` (each prefixed with the server's text prefix)."""
    body = {"model": server.model, "input": [server.text_prefix + t for t in texts], "encoding_format": encoding}
    response = httpx.post(f"{server.url}{URL_PREFIX}/embeddings", json=body, timeout=120)
    response.raise_for_status()
    data = sorted(response.json()["data"], key=lambda item: item["index"])
    return np.stack([decode(item) for item in data])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, dim) arrays."""
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--model", default="xalign-e5-small")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="converted base model folder")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "infinity_check.log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Compare infinity's vectors with xalign's; 0 if every cosine reaches ``MIN_COSINE``."""
    args = parse_args(argv)
    version = ModelStore(args.store).load(parse_ref(args.model))
    reference = OnnxEncoder.from_version(version, "fp32", threads=2).encode(TEXTS)  # (n, dim)
    print(f"{version.manifest.name}:{version.manifest.version} text_prefix={version.manifest.text_prefix!r}")
    worst = 1.0
    with serve_infinity(version.path, args.cache_dir, args.log, venv=args.venv) as server:
        for encoding in ("float", "base64"):
            found = cosines(infinity_vectors(server, TEXTS, encoding), reference)
            worst = min(worst, float(found.min()))
            print(encoding, " ".join(f"{c:.7f}" for c in found))
    print(f"min cosine {worst:.7f} (threshold {MIN_COSINE})")
    return 0 if worst >= MIN_COSINE else 1


if __name__ == "__main__":
    sys.exit(main())
