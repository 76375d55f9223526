"""One torch thread for these tiny tensors: on a shared 2-core machine a second thread only adds waiting."""

from __future__ import annotations

from torch_threads import one_torch_thread

__all__ = ["one_torch_thread"]  # a fixture of this folder (autouse)
