"""``OnnxEncoder``: texts in, L2-normalised sentence embeddings out, from a published dual-encoder version."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xalign.modelstore import ModelStore, ModelVersion
from xalign.modelstore.artifacts import SENTENCE_EMBEDDING, TOKENIZER_FILE
from xalign.modelstore.refs import parse_ref
from xalign.runtime.errors import UnknownVariantError
from xalign.runtime.session import Spinning, active_provider, feeds, graph_inputs, open_session
from xalign.runtime.tokenization import Batch, TextTokenizer

Vectors = npt.NDArray[np.float32]


class OnnxEncoder:
    """Runs a dual-encoder ONNX graph (``sentence_embedding`` output, pooling inside the graph)."""

    def __init__(
        self,
        model: Path,
        tokenizer: TextTokenizer,
        dim: int,
        name: str,
        *,
        threads: int | None = None,
        prefer_gpu: bool = True,
        spinning: Spinning = "run",
    ) -> None:
        self.name = name
        self.dim = dim
        self.tokenizer = tokenizer
        self.session = open_session(model, threads, prefer_gpu, spinning=spinning)
        self.provider = active_provider(self.session)
        self._inputs = graph_inputs(self.session)

    @classmethod
    def from_version(
        cls,
        version: ModelVersion,
        variant: str = "fp32",
        threads: int | None = None,
        prefer_gpu: bool = True,
        *,
        spinning: Spinning = "run",
    ) -> OnnxEncoder:
        """The encoder of one numeric variant of a verified store version."""
        manifest = version.manifest
        filename = manifest.onnx.variants.get(variant)
        if filename is None:
            raise UnknownVariantError(f"{manifest.name}:{manifest.version} has no {variant!r} variant")
        tokenizer = TextTokenizer(version.file(TOKENIZER_FILE), manifest.max_seq_length, manifest.text_prefix)
        name = f"{manifest.name}:{manifest.version}/{variant}"
        return cls(
            version.file(filename),
            tokenizer,
            manifest.embedding_dim,
            name,
            threads=threads,
            prefer_gpu=prefer_gpu,
            spinning=spinning,
        )

    @classmethod
    def from_store(
        cls,
        store_dir: Path,
        ref: str,
        variant: str = "fp32",
        threads: int | None = None,
        *,
        spinning: Spinning = "run",
    ) -> OnnxEncoder:
        """Load ``ref`` (``name``, ``name:VERSION`` or ``name@ALIAS``) from a store, verifying checksums."""
        return cls.from_version(ModelStore(store_dir).load(parse_ref(ref)), variant, threads, spinning=spinning)

    def run(self, batch: Batch) -> Vectors:
        """One forward pass on a padded batch: (batch, seq) ids → (batch, dim) embeddings."""
        (out,) = self.session.run([SENTENCE_EMBEDDING], feeds(batch, self._inputs))
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Vectors:
        """Embed ``texts``: (n,) → (n, dim)."""
        return self.embed(texts, batch_size)[0]

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> tuple[Vectors, int]:
        """Embed ``texts`` in length-sorted batches, so padding stays short; also return the token count."""
        ids = self.tokenizer.encode_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)  # (n, dim)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.run(self.tokenizer.pad([ids[i] for i in chunk]))
        return out, sum(len(x) for x in ids)
