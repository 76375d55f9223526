"""Where the mining job's tasks run: the seam between the job and a local or a distributed runner.

The job (``runtime/mining/job.py``) hands every embedding shard and every kNN query shard to an
:class:`Executor` and nothing else. A task is plain data (paths, texts, numbers) and a function is a
picklable object that loads what it needs itself (the encoder, an index), and each writes its own output
file atomically, so an executor may run them anywhere, in any order, and a task run twice does no harm.
:class:`LocalExecutor` runs them here, one after the other; a distributed executor (e.g. on Ray) only has
to implement :meth:`Executor.map`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


class Executor(Protocol):
    """Runs a function over tasks and yields each result as it comes in."""

    def map(self, function: Callable[[Task], Result], tasks: Iterable[Task], label: str) -> Iterator[Result]:
        """Apply ``function`` to every task and yield the results, in any order.

        ``tasks`` may be a lazy iterator (the job reads texts for the next shard only when it is asked for);
        ``label`` names the stage (``embed src``, ``knn fwd``) for the executor's own logs or dashboards.
        An exception of any task ends the map with that exception.
        """
        ...


class LocalExecutor:
    """Runs every task in this process, one after the other, in task order."""

    def map(self, function: Callable[[Task], Result], tasks: Iterable[Task], label: str) -> Iterator[Result]:
        """Apply ``function`` to each task in turn, taking the next task only once a result is consumed."""
        del label  # one process, one stage at a time: nothing to name
        for task in tasks:
            yield function(task)
