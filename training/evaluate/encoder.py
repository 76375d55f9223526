"""What the evaluation harnesses embed with: the ``Encoder`` protocol and a transformers implementation.

Importing this module needs neither torch nor transformers: ``TransformersEncoder`` imports them
when it is built, so the harnesses can also run on the store-backed ONNX encoder (``runtime/onnx_encoder.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_args

import numpy as np
import numpy.typing as npt

from xalign.training.models.pooling import Pooling, pool

if TYPE_CHECKING:
    from xalign.training.evaluate.frozen_bottom import FrozenBottom

# ``Pooling`` and ``pool`` too: the trainer's tasks and dev evaluation import them from here.
__all__ = ["PROGRESS_MIN_TEXTS", "Encoder", "Pooling", "TransformersEncoder", "pool"]

# Progress bars only where a run is long enough to watch.
PROGRESS_MIN_TEXTS = 2048


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised sentence embeddings."""

    @property
    def name(self) -> str:
        """A short human-readable name for reports (model folder, or ``name:version``)."""
        ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: (len(texts), dim) float32, every row of unit L2 norm, in input order."""
        ...


class TransformersEncoder:
    """A transformers encoder from a local folder + pooling + L2 normalisation.

    ``text_prefix`` is prepended to every text (E5 models want ``"query: "``). Texts are encoded in
    batches sorted by length (less padding), under ``torch.inference_mode``, and returned in input
    order. ``device`` ``None`` picks CUDA when available, else CPU.

    With ``frozen_cache`` (a folder) and ``frozen_layers`` N, the embeddings and first N layers run once per text
    and are kept on disk (``frozen_bottom.py``): a model trained on top of the same frozen bottom then runs only
    its top layers on texts another model already saw.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        pooling: Pooling = "mean",
        text_prefix: str = "query: ",
        max_seq_length: int = 512,
        batch_size: int = 32,
        device: str | None = None,
        frozen_cache: Path | None = None,
        frozen_layers: int = 0,
    ) -> None:
        import torch  # noqa: PLC0415 - heavy and optional: only this class needs it
        from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

        path = Path(model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a model folder (expected a transformers save_pretrained folder)")
        if pooling not in get_args(Pooling):
            raise ValueError(f"pooling must be one of {get_args(Pooling)}, got {pooling!r}")
        if batch_size < 1 or max_seq_length < 1:
            raise ValueError("batch_size and max_seq_length must be positive")
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path))
        self._model: Any = AutoModel.from_pretrained(str(path)).to(self._device).eval()
        self._name = path.name
        self.pooling: Pooling = pooling
        self.text_prefix = text_prefix
        # Never longer than the model has positions for (a short-context model would fail otherwise).
        positions = getattr(self._model.config, "max_position_embeddings", max_seq_length)
        self.max_seq_length = min(max_seq_length, positions)
        self.batch_size = batch_size
        self._bottom: FrozenBottom | None = None
        if frozen_cache is not None:
            from xalign.training.evaluate.frozen_bottom import FrozenBottom  # noqa: PLC0415 - imports torch

            self._bottom = FrozenBottom(
                self._model, self._tokenizer, frozen_cache, frozen_layers,
                prefix=text_prefix, max_length=self.max_seq_length,
            )  # fmt: skip

    @property
    def name(self) -> str:
        """The model folder's name."""
        return self._name

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into (len(texts), dim) float32 unit vectors, in input order."""
        from tqdm.auto import tqdm  # noqa: PLC0415 - a training extra, like torch

        # Longest first: similar lengths share a batch, and an out-of-memory shows up at once.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(order), self.batch_size)
        chunks: list[npt.NDArray[np.float32]] = []
        for start in tqdm(starts, desc=f"encode {self.name}", disable=len(texts) < PROGRESS_MIN_TEXTS):
            chunks.append(self._encode_batch([texts[i] for i in order[start : start + self.batch_size]]))
        if self._bottom is not None:
            self._bottom.flush()
        dim = int(self._model.config.hidden_size)
        if not chunks:
            return np.zeros((0, dim), np.float32)
        sorted_out = np.concatenate(chunks)
        out = np.empty_like(sorted_out)
        out[np.asarray(order)] = sorted_out  # undo the length sort
        return out

    def _encode_batch(self, batch: list[str]) -> npt.NDArray[np.float32]:
        """Unit vectors (len(batch), dim) of unprefixed texts."""
        import torch  # noqa: PLC0415

        with torch.inference_mode():
            hidden, mask = self._last_hidden(batch)  # (batch, seq, dim), (batch, seq)
            pooled = pool(hidden, mask, self.pooling)  # (batch, dim)
            normed = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
        return np.asarray(normed.cpu().numpy(), dtype=np.float32)

    def _last_hidden(self, batch: list[str]) -> tuple[Any, Any]:
        if self._bottom is not None:
            return self._bottom.last_hidden(batch)
        prefixed = [self.text_prefix + text for text in batch]
        enc = self._tokenizer(
            prefixed, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt"
        )
        enc = {k: v.to(self._device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        return self._model(**enc).last_hidden_state, enc["attention_mask"]
