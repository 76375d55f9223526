"""One torch thread for tests of tiny models: on a shared 2-core machine a second thread only adds waiting.

A conftest imports ``one_torch_thread`` to make it a fixture of its folder (it is autouse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models train ~6x faster on one thread than on two contending with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
