"""Provider choice: CUDA first when onnxruntime-gpu offers it and a GPU is wanted, CPU otherwise."""

from __future__ import annotations

from xalign.runtime.session import CPU, CUDA, choose_providers


def test_cuda_first_when_available_and_preferred() -> None:
    assert choose_providers(prefer_gpu=True, available=[CUDA, CPU]) == [CUDA, CPU]


def test_cpu_when_cuda_is_missing() -> None:
    # The CPU onnxruntime wheel (and onnxruntime-gpu without CUDA libraries) lists no CUDA provider.
    assert choose_providers(prefer_gpu=True, available=[CPU]) == [CPU]
    assert choose_providers(prefer_gpu=True, available=["AzureExecutionProvider", CPU]) == [CPU]


def test_cpu_when_gpu_is_not_wanted() -> None:
    assert choose_providers(prefer_gpu=False, available=[CUDA, CPU]) == [CPU]
