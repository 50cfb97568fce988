"""Peak resident memory of a process tree: a process and the processes it starts (pool
workers, glpsol, cbc), together."""

from __future__ import annotations

import os
import resource
import sys
import threading

import psutil

MIB = 2**20


def _high_water(pid: int) -> int | None:
    """The kernel's high-water resident set of ``pid``'s own memory (``VmHWM``), in bytes.

    Not ``getrusage``: its maximum survives ``exec``, so a process started from a 200 MiB
    Python process reports at least 200 MiB whatever it uses itself (measured: a fresh bench
    worker read 214 MiB where its own peak was 183 MiB; 500 MiB of Python starting ``true``
    reads as 500 MiB for ``true``)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak resident set of a process (default: this one) and its descendants together, in
    MiB.

    The root's own peak is the kernel's high-water mark; the tree's total (root plus every
    descendant's resident set) is sampled every ``interval`` seconds while the block runs, so
    a child living less than that may be missed. A child whose command line is still its
    parent's has not exec'd yet and shares its parent's pages: it is not counted twice.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.01):
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _high_water(self.pid) or 0)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.wait(self.interval):
            try:
                total = root.memory_info().rss
                kids = root.children(recursive=True)
            except psutil.Error:  # the root has ended
                return
            for child in kids:
                try:
                    if child.cmdline() != psutil.Process(child.ppid()).cmdline():
                        total += child.memory_info().rss
                except psutil.Error:  # it ended between listing and reading
                    pass
            self._peak = max(self._peak, total, _high_water(self.pid) or 0)

    @property
    def mib(self) -> float:
        """The peak so far (after the block: the peak of the block's run)."""
        peak = self._peak
        if self.pid == os.getpid() and _high_water(self.pid) is None:  # no /proc: not Linux
            unit = 1 if sys.platform == "darwin" else 1024  # macOS counts bytes, others KiB
            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit)
        return peak / MIB
