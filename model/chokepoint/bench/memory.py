"""Peak resident memory of a process tree: a process and the processes it starts (pool
workers, glpsol, cbc), together."""

from __future__ import annotations

import os
import resource
import sys
import threading

import psutil

MIB = 2**20
#: Seconds between two readings of a fork's own memory (USS).
USS_INTERVAL = 0.2
#: Seconds between two listings of the process tree.
CHILDREN_INTERVAL = 0.1


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
    parent's is a fork (the network engine's workers, a spawned worker before its exec): it
    shares its parent's pages, so only the memory it holds alone (USS) is counted, read every
    :data:`USS_INTERVAL` seconds (the kernel walks the whole process to count it: at every
    sample, two 1.4 GiB forks took a core).
    """

    def __init__(self, pid: int | None = None, interval: float = 0.01):
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._uss: dict[int, tuple[float, int]] = {}  # fork -> (when read, bytes)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _high_water(self.pid) or 0)

    def _sample(self) -> None:
        import time

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        # The tree is listed every CHILDREN_INTERVAL seconds, resident sets read at every
        # sample: listing reads every process of the machine, and at every 10 ms sample it took
        # 13% of a core from the run measured.
        kids: list[tuple[psutil.Process, bool]] = []
        listed = -CHILDREN_INTERVAL
        while not self._stop.wait(self.interval):
            try:
                total = root.memory_info().rss
                if time.monotonic() - listed >= CHILDREN_INTERVAL:
                    kids, listed = self._children(root), time.monotonic()
                    self._peak = max(self._peak, _high_water(self.pid) or 0)
            except psutil.Error:  # the root has ended
                return
            for child, fork in kids:
                try:
                    total += self._fork_uss(child) if fork else child.memory_info().rss
                except psutil.Error:  # it ended between listing and reading
                    pass
            self._peak = max(self._peak, total)

    @staticmethod
    def _children(root: psutil.Process) -> list[tuple[psutil.Process, bool]]:
        """The root's descendants, each with whether it is a fork (its parent's command line:
        a spawned worker before its exec, or a forked worker)."""
        out = []
        for child in root.children(recursive=True):
            try:
                out.append((child, child.cmdline() == psutil.Process(child.ppid()).cmdline()))
            except psutil.Error:
                pass
        return out

    def _fork_uss(self, child: psutil.Process) -> int:
        """A fork's memory of its own, read again every :data:`USS_INTERVAL` seconds."""
        import time

        when, uss = self._uss.get(child.pid, (-USS_INTERVAL, 0))
        if time.monotonic() - when >= USS_INTERVAL:
            uss = child.memory_full_info().uss
            self._uss[child.pid] = (time.monotonic(), uss)
        return uss

    @property
    def mib(self) -> float:
        """The peak so far (after the block: the peak of the block's run)."""
        peak = self._peak
        if self.pid == os.getpid() and _high_water(self.pid) is None:  # no /proc: not Linux
            unit = 1 if sys.platform == "darwin" else 1024  # macOS counts bytes, others KiB
            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit)
        return peak / MIB
