"""The cosine similarity that ``/v1/similarity`` and ``/v1/rerank`` report, of vectors from ``LoadedModel.embed``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from xalign.runtime.onnx_encoder import Vectors


def cosines(left: Vectors, right: Vectors) -> npt.NDArray[np.float64]:
    """Row-wise cosines: (n, dim) and (n, dim) → (n,); a (1, dim) side is compared with every row of the other.

    Graphs normalise their output already; dividing by the norms keeps the score a cosine for any model.
    """
    a, b = left.astype(np.float64), right.astype(np.float64)
    dots = np.einsum("ij,ij->i", *np.broadcast_arrays(a, b))  # (n,)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)  # (n,)
    return np.asarray(dots / np.maximum(norms, 1e-12), dtype=np.float64)
