"""``SenseEngine``: runs a backpack graph's per-token outputs (``contextual``, ``senses``, ``alpha``) for one text.

It shares the ONNX session and tokenizer of the version's ``OnnxEncoder`` (which runs ``sentence_embedding``
for /v1/embeddings), so a backpack version holds one session. ``senses.npz`` is read once, when the version
loads; the store has verified its sha256 by then, like every file the manifest lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from xalign.modelstore import ModelVersion
from xalign.modelstore.artifacts import (
    BACKPACK_OUTPUTS,
    SENSES_FILE,
    SENTENCE_EMBEDDING,
    SenseTable,
    SenseTableError,
    read_senses,
)
from xalign.runtime.errors import SenseGraphError
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.senses.decomposition import SenseArrays
from xalign.runtime.session import feeds, graph_inputs
from xalign.runtime.tokenization import TextTokenizer

# The per-token outputs, in the order ``run`` unpacks them: contextual, senses, alpha.
OUTPUTS = tuple(name for name in BACKPACK_OUTPUTS if name != SENTENCE_EMBEDDING)


class SenseEngine:
    """One backpack version's senses: the shared session, its tokenizer, the top-word table, the token texts."""

    def __init__(self, session: ort.InferenceSession, tokenizer: TextTokenizer, table: SenseTable, name: str) -> None:
        found = {o.name for o in session.get_outputs()}
        missing = [name for name in OUTPUTS if name not in found]
        if missing:
            raise SenseGraphError(f"{name}: the graph has no output {missing}")
        if tokenizer.vocab_size > table.vocab_size:
            raise SenseGraphError(f"{name}: tokenizer has {tokenizer.vocab_size} ids, {SENSES_FILE} {table.vocab_size}")
        self.name = name
        self.session = session
        self.tokenizer = tokenizer
        self.table = table
        self._inputs = graph_inputs(session)
        # Decoded once: a request then looks up (seq x k x top_words) texts instead of decoding them.
        self.words = tokenizer.token_texts(table.vocab_size)

    @classmethod
    def from_version(cls, version: ModelVersion, encoder: OnnxEncoder) -> SenseEngine:
        """The engine of a verified backpack version, over the session ``encoder`` already opened."""
        if SENSES_FILE not in version.manifest.files:
            # Only files the manifest lists carry a checksum the store verified.
            raise SenseTableError(f"{encoder.name}: {SENSES_FILE} is not listed in the manifest")
        table = read_senses(version.file(SENSES_FILE))
        return cls(encoder.session, encoder.tokenizer, table, encoder.name)

    def run(self, ids: Sequence[int]) -> SenseArrays:
        """One forward pass over one text's ids: contextual (seq, d), senses (seq, k, d), alpha (k, seq, seq)."""
        batch = self.tokenizer.pad([ids])  # (1, seq), no padding
        outputs = self.session.run(list(OUTPUTS), feeds(batch, self._inputs))
        contextual, senses, alpha = (np.asarray(out[0], dtype=np.float32) for out in outputs)
        return SenseArrays(ids=batch.input_ids[0], contextual=contextual, senses=senses, alpha=alpha)

    def check(self, text: str, dim: int) -> None:
        """Run ``text`` and raise ``SenseGraphError`` unless shapes agree, values are finite and alpha rows sum to 1."""
        ids, _ = self.tokenizer.encode_one(text)
        arrays = self.run(ids)
        n, k = len(ids), self.table.n_senses
        outputs = (arrays.contextual, arrays.senses, arrays.alpha)
        expected = dict(zip(OUTPUTS, ((n, dim), (n, k, dim), (k, n, n)), strict=True))
        found = {name: out.shape for name, out in zip(OUTPUTS, outputs, strict=True)}
        if found != expected or self.table.dim != dim:
            raise SenseGraphError(f"{self.name}: outputs {found}, table d={self.table.dim}; expected {expected}")
        if not all(np.isfinite(out).all() for out in outputs):
            raise SenseGraphError(f"{self.name}: senses outputs contain NaN or infinity")
        if not np.allclose(arrays.alpha.sum(axis=-1), 1.0, atol=1e-3):
            raise SenseGraphError(f"{self.name}: alpha rows do not sum to 1")
