"""Questions answered side by side on forked workers.

A fork starts with everything its parent built (the network's arrays, an igraph graph, HiGHS
models: seconds to build, pages shared until written), answers a few questions and sends back
small results. Used where one question costs far more than a fork: the network engine's maximum
flows on a million arcs, HiGHS's interior point on half a million (two solves on two forked
workers: 1.8x one after the other on the project's 2-core machine).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

#: The task of the :func:`answer` under way, as its forked workers see it (set just before
#: the fork, so that each worker starts with it).
_TASK: Callable[[int], object] | None = None


def can_fork() -> bool:
    """Whether this platform starts processes by fork (Linux, macOS; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def answer(task: Callable[[int], object], n: int, workers: int, who: str,
           meanwhile: Callable[[], None] | None = None) -> list[tuple[object, float]]:
    """``[(task(i), seconds)]`` for ``i`` in ``range(n)``, on ``workers`` forked processes;
    this process runs ``meanwhile`` while they work. A worker that dies ends it with one
    :class:`~chokepoint.errors.SolverError` naming ``who``; an interrupt stops the workers of
    this pool (and no other child of this process)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ..errors import SolverError
    from ..lifeline import forked_init, forking, stop

    global _TASK
    _TASK = task
    others = set(multiprocessing.active_children())  # a caller's own are left alone
    pool = ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), forked_init)
    finished = False
    try:
        with forking():  # the first question forks the workers
            futures = [pool.submit(_run, i) for i in range(n)]
        if meanwhile is not None:
            meanwhile()
        out = [f.result() for f in futures]
        finished = True
        return out
    except BrokenProcessPool:
        raise SolverError(f"{who}: a worker process died (killed, or out of memory? "
                          "--workers 1 solves in this process alone)") from None
    finally:
        _TASK = None
        if finished:
            pool.shutdown(wait=True)
        else:  # stop now: queued questions are cancelled, running ones killed
            pool.shutdown(wait=False, cancel_futures=True)
            stop([p for p in multiprocessing.active_children() if p not in others])
            pool.shutdown(wait=True)


def _run(i: int) -> tuple[object, float]:
    """In a forked worker: task ``i`` and the seconds it took."""
    t = time.perf_counter()
    got = _TASK(i)
    return got, time.perf_counter() - t
