"""Where a run's time goes: wall-clock seconds per phase of a command.

``imports`` (the run's libraries, after the interpreter has started), ``read`` (scenario,
networks, focal sets), ``build`` (the LP's arrays and each formulation's engine), ``solve``
and ``write`` (labelled results, notes, files). A library imported lazily inside a phase
counts in that phase. ``chokepoint bench --suite chain`` sets :data:`ENV` to a file; the
command line writes the phases there as JSON when it is done, with the wall-clock times at
which its ``main`` started and ended, so that the benchmark adds the interpreter's start
(before ``main``) and its teardown (after) from its own clock.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

#: Environment variable naming the file a command writes its phases to.
ENV = "CHOKEPOINT_PHASES"
#: The phases, in the order a run goes through them.
PHASES = ("imports", "read", "build", "solve", "write")

_seconds: dict[str, float] = {}


def add(name: str, seconds: float) -> None:
    _seconds[name] = _seconds.get(name, 0.0) + seconds


@contextmanager
def phase(name: str):
    """Count the wall-clock time of the block in phase ``name``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - t)


def seconds() -> dict[str, float]:
    return dict(_seconds)


def dump(started: float) -> None:
    """Write the phases to the file :data:`ENV` names, if it is set (``started``: the
    wall-clock time at which ``main`` began)."""
    path = os.environ.get(ENV)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"main_start": started, "main_end": time.time(), "phases": _seconds}, f)
