"""``xalign-train train`` under torchrun: 2 CPU processes on gloo train like 1 process accumulating 2 micro-batches.

The data order gives micro-batch slot ``micro * world_size + rank`` the same examples and dropout seed either
way, and DDP averages the two processes' gradients as accumulation does; so the weights after 3 steps agree
up to float rounding. That only holds if rank 1 really trained its share and its gradients reached rank 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from processes import REPO, free_port
from safetensors.torch import load_file

from xalign.training.recipes.loader import load_recipe
from xalign.training.trainer.checkpoint import TRAINING_STATE, list_checkpoints, read_manifest
from xalign.training.trainer.loop import train
from xalign.training.trainer.metrics_log import read_metrics

DATA = REPO / "tests" / "data" / "trainer"


def _recipe(folder: Path, model_dir: Path, output: str, grad_accum: int) -> Path:
    path = folder / f"ddp-{grad_accum}.toml"
    path.write_text(
        f'base = "{model_dir}"\noutput = "{output}"\ndata_root = "{DATA}"\nsteps = 3\nbatch_size = 4\n'
        f"grad_accum = {grad_accum}\nmax_seq_length = 32\nlr = 1e-3\nwarmup_steps = 1\nkeep_checkpoints = 0\n"
        'device = "cpu"\n'
        '[[data]]\nkind = "multi30k"\npath = "multi30k"\nsplit = "train"\nlangs = ["en", "de", "fr"]\n'
        '[[objectives]]\nname = "translation_ranking"\n'
        '[[objectives]]\nname = "representation_translation"\nweight = 0.1\n',
        encoding="utf-8",
    )
    return path


def test_two_gloo_processes_train_like_two_accumulated_micro_batches(tiny_model_dir: Path, tmp_path: Path) -> None:
    ddp_recipe = _recipe(tmp_path, tiny_model_dir, "ddp", grad_accum=1)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "xalign.training.cli", "train", str(ddp_recipe), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("step 3: ") == 1  # rank 0 alone reports (and saves)

    ddp_output = tmp_path / "ddp"
    assert [s for s, _ in list_checkpoints(ddp_output)] == [3]
    manifest = read_manifest(ddp_output / "step-000003")
    assert manifest.world_size == 2 and manifest.step == 3
    records = [r for r in read_metrics(ddp_output / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 above; tiny models crawl on contended threads
    try:
        single = train(load_recipe(_recipe(tmp_path, tiny_model_dir, "single", grad_accum=2)), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert single.checkpoint is not None
    ddp_weights = load_file(str(ddp_output / "step-000003" / "model.safetensors"))
    single_weights = load_file(str(single.checkpoint / "model.safetensors"))
    for key, value in ddp_weights.items():
        assert torch.allclose(value, single_weights[key], rtol=0, atol=1e-5), key
    ddp_heads = torch.load(ddp_output / "step-000003" / TRAINING_STATE, weights_only=True)["heads"]
    single_heads = torch.load(single.checkpoint / TRAINING_STATE, weights_only=True)["heads"]
    for key, value in ddp_heads["representation_translation"].items():
        assert torch.allclose(value, single_heads["representation_translation"][key], rtol=0, atol=1e-5), key
    # The logged loss is the mean over processes, as the single run's is the mean over micro-batches.
    single_losses = [r["loss"] for r in read_metrics(single.checkpoint.parent / "metrics.jsonl") if "loss" in r]
    assert [r["loss"] for r in records] == pytest.approx(single_losses, abs=1e-5)
