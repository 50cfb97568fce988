"""Raw benchmark measurements: one row per solve per repeat, and one row of metadata per run.

- ``measurements.csv``: :class:`Measurement` rows, appended by every ``chokepoint bench``; the
  per-run summary ``bench.csv`` is computed from them (:func:`summary`).
- ``runs.csv``: :class:`RunInfo`, once per run: what was measured with (chokepoint's version
  and commit, Python, the solvers' versions, the family parameters) and on (OS, CPU, memory,
  the load average when the run started).

Every file is appended to whole or not at all; a file of other columns is an error naming it,
checked before anything is measured.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import platform
import statistics
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import ChokepointError

MEASUREMENTS = "measurements.csv"
RUNS = "runs.csv"


@dataclass
class Measurement:
    """One solve of one instance in one repeat (``None``: an empty CSV cell)."""

    run_id: str
    suite: str
    instance: str
    focal: str | None
    pair: str | None
    case: str | None
    formulation: str
    solver: str  # the name as given, without options
    solver_options: str | None  # key=value,... as given
    engine: str | None  # what actually solved: highspy, network, a Pyomo solver, glpsol, ...
    repeat: int
    seconds: float | None
    status: str
    objective: float | None = None  # tonnes (the instance file's objective for --instances)
    index: float | None = None
    iterations: int | None = None
    countries: int | None = None  # scale and chain suites: size of the synthetic network


@dataclass(frozen=True)
class RunInfo:
    """Metadata of one ``chokepoint bench`` run."""

    run_id: str
    date: str
    command: str
    chokepoint: str
    git_commit: str | None
    python: str
    os: str
    cpu_model: str
    cpu_count: int
    memory_gib: float | None
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None
    repeats: int
    solver_versions: str  # JSON: solver -> version as it reports it
    families: str | None  # the scenario whose constraint families were on (--families)
    family_parameters: str  # JSON: family.parameter -> value

    @classmethod
    def now(cls, repeats: int, command: str = "", solver_versions: dict | None = None,
            families: str | None = None, family_parameters: dict | None = None) -> "RunInfo":
        from ..outputs.provenance import installed

        version, commit = installed()
        load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
        # a leading letter: an id of hex digits alone (1 run in 280) or like 12e4567890 is read as
        # a number by pandas and spreadsheets, and its leading zeros are lost
        return cls(f"r{uuid.uuid4().hex[:11]}", time.strftime("%Y-%m-%dT%H:%M:%S%z"), command,
                   version, commit, platform.python_version(),
                   f"{platform.system()} {platform.release()} ({platform.machine()})",
                   cpu_model(), multiprocessing.cpu_count(), memory_gib(), *load, repeats,
                   json.dumps(solver_versions or {}, sort_keys=True), families,
                   json.dumps(family_parameters or {}, sort_keys=True))


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Physical memory of the machine (None where the OS does not say)."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 2)
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> str:
    return (f"{cpu_model()}, {multiprocessing.cpu_count()} cores, {memory_gib()} GiB, Python "
            f"{platform.python_version()}, {platform.system()}")


def columns(cls) -> list[str]:
    return [f.name for f in fields(cls)]


def check_csv(path: Path, names: list[str], what: str) -> str:
    """The text rows will be appended to ('' if there is none yet), checked before anything is
    measured: a folder, another tool's file or a different header is an error naming it."""
    from ..publish import check_path

    check_path(path, folder=False)
    if not path.is_file():
        return ""
    try:
        before = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ChokepointError(f"{path} is not a {what} (not UTF-8 text): move it away, or "
                              "give another --out") from None
    except OSError as e:
        raise ChokepointError(f"{path}: cannot read it ({e.strerror})") from None
    if not before.strip():
        return ""
    if before.splitlines()[0].split(",") != names:
        raise ChokepointError(f"{path} has other columns (an older {what}?): move it "
                              "away, or give another --out")
    return before if before.endswith("\n") else before + "\n"  # a file cut mid-line


def appended(path: Path, names: list[str], records: list[dict], what: str) -> str:
    """The whole new text of ``path``: its rows (checked) and the records after them."""
    before = check_csv(path, names, what)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    if not before.strip():
        w.writeheader()
    for r in records:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in names})
    return before + buf.getvalue()


def write_all(folder: Path, texts: dict[str, str]) -> None:
    """Each file of ``texts`` (name -> whole text) written aside, then all renamed into place:
    a failure before the renames leaves every file as it was."""
    from contextlib import ExitStack

    from ..publish import written

    with ExitStack() as stack:
        for name, text in texts.items():
            # each file's header was checked before anything was measured (check_csv)
            stack.enter_context(written(folder / name, ours=lambda p: True)).write_text(
                text, encoding="utf-8")


def solve_ms(ms: list[Measurement]) -> tuple[float | None, float | None]:
    """Median and p95 of the solve times in milliseconds (measurements without a time,
    e.g. an index answered without a solve, are left out)."""
    t = sorted(m.seconds * 1000 for m in ms if m.seconds is not None and m.status == "ok")
    if not t:
        return None, None
    return statistics.median(t), t[min(len(t) - 1, int(0.95 * len(t)))]
