"""The model folder infinity-emb's ONNX engine (``--engine optimum``) loads, built from an xalign store version.

infinity's ``OptimumEmbedder`` runs the graph through optimum's ``ORTModelForFeatureExtraction``, which
reads the output named ``last_hidden_state`` (batch, seq, dim) and nothing else; infinity then pools
(``--pooling-method``) and L2-normalises in numpy. The store's graph (``export/dual_encoder.py``) ends
in that pooling itself and gives only ``sentence_embedding`` (batch, dim). So the folder's ``model.onnx``
is the store's graph cut before its pooling: the same nodes and weights up to the encoder's last
``LayerNormalization``, whose output becomes ``last_hidden_state`` (an ``Identity``); the masked mean and
the normalisation after it are dropped, as infinity does them. A graph that already has a
``last_hidden_state`` output is linked as it is.

Next to it: ``config.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` of the converted
base model folder (transformers' ``AutoConfig`` and ``AutoTokenizer`` read them) and the store version's
own ``tokenizer.json``, the tokenizer xalign serves with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

LAST_HIDDEN_STATE = "last_hidden_state"
BASE_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json")


def store_manifest(version_dir: Path) -> dict[str, Any]:
    """The store version's ``manifest.json``."""
    manifest: dict[str, Any] = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def encoder_output(graph: onnx.GraphProto) -> str:
    """The encoder's last hidden state in ``graph``: the output of its last ``LayerNormalization``.

    The pooling after it multiplies it by the mask; a graph whose last ``LayerNormalization`` feeds no
    ``Mul`` is not the pooled encoder this module knows how to cut.
    """
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    if not norms:
        raise ValueError("the graph has no LayerNormalization node")
    hidden = str(norms[-1].output[0])
    if not any(node.op_type == "Mul" and hidden in node.input for node in graph.node):
        raise ValueError(f"{hidden!r} (the last LayerNormalization) feeds no Mul: not a mean-pooled encoder")
    return hidden


def _needed_nodes(graph: onnx.GraphProto, output: str) -> list[onnx.NodeProto]:
    """The nodes ``output`` depends on, in the graph's (topological) order."""
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output}
    needed: set[int] = set()
    pending = [output]
    while pending:
        index = producer.get(pending.pop())
        if index is not None and index not in needed:
            needed.add(index)
            pending.extend(graph.node[index].input)
    return [node for index, node in enumerate(graph.node) if index in needed]


def cut_before_pooling(model: onnx.ModelProto, dim: int) -> onnx.ModelProto:
    """``model`` with ``last_hidden_state`` (float32, (batch, sequence, ``dim``)) as its only output."""
    graph = model.graph
    hidden = encoder_output(graph)
    graph.node.append(helper.make_node("Identity", [hidden], [LAST_HIDDEN_STATE], name="infinity_output"))
    kept = _needed_nodes(graph, LAST_HIDDEN_STATE)
    used = {name for node in kept for name in node.input}
    made = {name for node in kept for name in node.output}
    initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    value_info = [info for info in graph.value_info if info.name in made]
    del graph.node[:], graph.initializer[:], graph.value_info[:], graph.output[:]
    graph.node.extend(kept)
    graph.initializer.extend(initializers)
    graph.value_info.extend(value_info)
    shape: list[str | int] = ["batch", "sequence", dim]
    graph.output.append(helper.make_tensor_value_info(LAST_HIDDEN_STATE, onnx.TensorProto.FLOAT, shape))
    return model


def place_graph(source: Path, target: Path, dim: int) -> None:
    """Link ``source`` at ``target`` if it has ``last_hidden_state``; else write its cut (``cut_before_pooling``)."""
    model = onnx.load(str(source))
    if any(output.name == LAST_HIDDEN_STATE for output in model.graph.output):
        target.symlink_to(source.resolve())
        return
    cut = cut_before_pooling(model, dim)
    onnx.checker.check_model(cut)
    onnx.save(cut, str(target))


def build_model_dir(version_dir: Path, cache_dir: Path, folder: Path) -> dict[str, Any]:
    """Fill ``folder`` for ``infinity_emb v2 --model-id . --engine optimum``; return the version's manifest."""
    manifest = store_manifest(version_dir)
    graph = version_dir / manifest["onnx"]["variants"]["fp32"]
    place_graph(graph, folder / "model.onnx", int(manifest["embedding_dim"]))
    for name in BASE_FILES:
        shutil.copyfile(cache_dir / name, folder / name)
    shutil.copyfile(version_dir / "tokenizer.json", folder / "tokenizer.json")
    return manifest
