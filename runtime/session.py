"""onnxruntime sessions: provider choice (CUDA when present, else CPU), thread settings, and the feeds of a run."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from xalign.modelstore.artifacts import INPUT_NAMES
from xalign.runtime.tokenization import Batch

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# How idle intra-op threads wait for work: busy-wait always (onnxruntime's default), busy-wait only while a
# run is in progress (between its ops) and sleep once it returns, or always sleep.
Spinning = Literal["always", "run", "off"]


def choose_providers(prefer_gpu: bool = True, available: list[str] | None = None) -> list[str]:
    """CUDA then CPU when onnxruntime-gpu sees a GPU and ``prefer_gpu`` is set; CPU alone otherwise."""
    found = ort.get_available_providers() if available is None else available
    if prefer_gpu and CUDA in found:
        return [CUDA, CPU]
    return [CPU]


def open_session(
    model: Path, threads: int | None = None, prefer_gpu: bool = True, *, spinning: Spinning = "run"
) -> ort.InferenceSession:
    """An inference session on ``model`` with full graph optimisation and ``threads`` intra-op threads.

    ``spinning`` (``Spinning``): "run" keeps the busy-wait between a run's ops, which a single short text
    needs (a sleeping thread takes tens of microseconds to wake, once per op), and stops it when the run
    returns, so a server's event loop and its clients get the cores back between batches (measured with
    ``benchmarks/serving_compare.py``: "always" served 10-15% fewer sentences/s on 2 cores, "off" added
    about 2 ms to one text's latency).
    """
    options = ort.SessionOptions()
    if spinning == "off":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spinning == "run":
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        # One op at a time: inter-op parallelism only oversubscribes a small CPU.
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), sess_options=options, providers=choose_providers(prefer_gpu))


def active_provider(session: ort.InferenceSession) -> str:
    """The provider that runs the graph (the first one the session accepted): ``cuda`` or ``cpu``."""
    return "cuda" if session.get_providers()[0] == CUDA else "cpu"


def graph_inputs(session: ort.InferenceSession) -> frozenset[str]:
    """The input names the graph declares (a graph may take ids without a mask)."""
    return frozenset(i.name for i in session.get_inputs())


def feeds(batch: Batch, accepted: Collection[str]) -> dict[str, npt.NDArray[np.int64]]:
    """The (batch, seq) ids and mask of ``batch`` under the contract's input names, those in ``accepted`` only."""
    values = dict(zip(INPUT_NAMES, (batch.input_ids, batch.attention_mask), strict=True))
    return {name: value for name, value in values.items() if name in accepted}
