"""Provenance a referee would accept: which code, which data, which solver made a result.

Recorded in ``results.nc`` (global attribute ``provenance``, JSON) and shown in the report:
the package version and the git commit of a checkout (``+dirty`` with uncommitted changes), the
SHA-256 of every data table or flows file the networks were read from, the solver with its
version and options, and the Python version. Files are named, never given with the folders of
the user's machine.
"""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from ..runs.parts import file_digest, input_files


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout this package runs from, or None (an installed wheel)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def installed() -> tuple[str, str | None]:
    """chokepoint's version and commit: the checkout's commit when it runs from one, else the
    commit its build recorded in its metadata (``hatch_build.py``), else the one pip recorded
    when it installed it from a repository (``direct_url.json``)."""
    import json
    from importlib import metadata

    from .. import __version__

    commit = git_commit()
    try:
        dist = metadata.distribution("chokepoint")
    except metadata.PackageNotFoundError:
        return __version__, commit
    if commit is None:  # recorded by the build (hatch_build.py)
        commit = (dist.read_text("extra_metadata/BUILD_COMMIT") or "").strip() or None
    if commit is None:
        try:
            url = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            url = {}
        commit = url.get("vcs_info", {}).get("commit_id")
    return dist.version or __version__, commit


def solver_version(name: str) -> str | None:
    """The version of a solver, as it reports it (None where it cannot say)."""
    try:
        if name in ("highspy", "appsi_highs", "highs"):
            import highspy

            from ..lp.solverlog import swallow_banner

            swallow_banner()
            return highspy.Highs().version()
        if name == "network":  # from its metadata: importing igraph may import matplotlib
            from importlib.metadata import version

            return f"igraph {version('igraph')}"
        from ..lp.pyomo_engine import make_solver

        version = make_solver(name).version()
        return ".".join(map(str, version)) if version else None
    except Exception:  # a solver that cannot say stays unversioned, not an error
        return None


def provenance(scenario, solvers: list[str]) -> dict:
    """What made a run's results: code, data (by content) and solvers."""
    from .. import __version__

    base = scenario.path.parent if scenario.path else None
    files = {}
    for path in input_files(scenario.spec, base):
        path = Path(path)
        files[path.name] = f"sha256:{file_digest(path)}" if path.is_file() else "absent"
    return {
        "chokepoint": __version__,
        "git_commit": installed()[1],
        "python": platform.python_version(),
        "scenario_file": scenario.path.name if scenario.path else None,
        "scenario_sha256": file_digest(scenario.path) if scenario.path and
        scenario.path.is_file() else None,
        "inputs": files,
        "solvers": {s: solver_version(s) for s in dict.fromkeys(solvers)},
        "method": "Cheng, Fuchs, Karplus & Michalek, Nature Communications 15, 2143 (2024), "
                  "doi:10.1038/s41467-024-46418-1",
    }
