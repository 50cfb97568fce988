"""Worker processes die with the run: a module of the standard library only, so that a worker
starts watching its parent a fraction of a second after it is spawned, before it imports the
model (seconds of Pyomo and pandas on a loaded machine, during which a run killed with
``kill -9`` used to leave it computing).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

#: Seconds between two looks of a worker at its parent (where the kernel cannot watch).
PARENT_POLL_S = 0.25


#: A pool worker's task inputs (networks, statistics, extension sources), sent once per
#: process as pickled bytes and unpickled after the watchdog is up.
_INPUTS: dict = {}


def worker_init(inputs: bytes | None = None) -> None:
    """A pool worker's initializer: it dies with the run, leaves Ctrl-C to the run (which
    stops it), and its progress bars lock with a thread lock, not a named semaphore that a
    stopped worker would leave behind; then it keeps the run's task ``inputs``."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tqdm.auto import tqdm

    tqdm.set_lock(threading.RLock())
    if inputs is not None:
        import pickle

        _INPUTS.update(pickle.loads(inputs))


def forked_init() -> None:
    """A forked worker's initializer (a copy of the run that answers a few questions): it dies
    with the run, leaves Ctrl-C to the run, and ends at once on SIGTERM (the run's own
    handler, inherited by the fork, would turn it into an exception to unwind)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED)


#: Signals blocked while the run forks (:func:`forking`): a Ctrl-C landing between a fork and
#: the worker's :func:`forked_init` would run the run's own handler in the worker.
FORK_BLOCKED = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def forking():
    """Hold Ctrl-C and SIGTERM while workers are forked: the workers start with them held
    (and let them in once their handlers are theirs); this process receives any that came
    meanwhile when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_inputs() -> dict:
    """The task inputs this worker received when it started."""
    return _INPUTS


def die_with_parent() -> None:
    """End this process as soon as the process that started it is gone, however it died. On
    Linux the kernel sends SIGKILL (``PR_SET_PDEATHSIG``; it fires when the *thread* that
    started this process ends, and the pool starts its workers from the run's main thread); a
    thread watching the parent's pid backs it up elsewhere (it needs the GIL, which a long
    solve in C may hold)."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    parent = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the kernel was told
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # nothing of the dead run's is worth finishing or flushing

    threading.Thread(target=watch, name="chokepoint-parent-watch", daemon=True).start()


def stop(processes) -> None:
    """End these worker processes now: SIGTERM, then SIGKILL for any still alive after 2 s."""
    for p in processes:
        p.terminate()
    for p in processes:
        p.join(timeout=2)
        if p.is_alive():
            p.kill()
            p.join(timeout=2)
