"""Where solvers' own words go: never on stdout, which belongs to the tables a user redirects
(``chokepoint run paper_2020 > table.txt``); on stderr when asked for.

Solver logs are asked for with ``CHOKEPOINT_SOLVER_LOG=1`` in the environment (``--verbose``
sets it, so that pool workers inherit it).

HiGHS prints its banner ("Running HiGHS ...") from the C++ constructor of the first ``Highs``
object in a process, before any option can silence it, through the C library's stdout, which
Python's ``sys.stdout`` does not see. It is printed once per process, so the first object is
made by :func:`swallow_banner` (called before every engine is made) with file descriptor 1
pointing at stderr (logs wanted) or at the null device; every later object (ours, Pyomo's
``appsi_highs`` and ``highs``) prints no banner. Pyomo solvers solve with file descriptor 1
pointed the same way (their ``tee`` and anything a solver library prints itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

_LOCK = threading.Lock()
_BANNER_DONE = False


def wanted() -> bool:
    """Solver logs asked for (``CHOKEPOINT_SOLVER_LOG`` set to anything but ``0``)."""
    return os.environ.get("CHOKEPOINT_SOLVER_LOG", "") not in ("", "0")


def _flush_c_stdio() -> None:
    """Flush the C library's buffered stdout, so that what HiGHS wrote goes where fd 1 points
    now, not where it points when the process exits."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (e.g. Windows)
        pass


@contextlib.contextmanager
def stdout_fd_to_stderr():
    """File descriptor 1 points at stderr (logs wanted) or the null device inside."""
    sys.stdout.flush()
    _flush_c_stdio()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all (a daemon): nothing to protect
        yield
        return
    target = os.dup(2) if wanted() else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def swallow_banner() -> None:
    """Make this process's first ``highspy.Highs`` with its banner kept off stdout."""
    global _BANNER_DONE
    with _LOCK:
        if _BANNER_DONE:
            return
        import highspy

        with stdout_fd_to_stderr():
            highspy.Highs()
        _BANNER_DONE = True


def log_to_stderr(highs) -> None:
    """A ``highspy.Highs``'s log (when its ``output_flag`` is on) on stderr, not its console
    (stdout)."""
    highs.setOptionValue("log_to_console", False)
    highs.cbLogging.subscribe(lambda event: sys.stderr.write(event.message))
