"""The package carries what it needs: a wheel, installed in a fresh virtual environment, runs
the shipped paper scenario by name from any folder (slow: builds the wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def ok(res: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    """The child succeeded, or the test fails showing what it said."""
    assert res.returncode == 0, f"{what} failed ({res.returncode}):\n{res.stdout[-2000:]}\n" \
                                f"{res.stderr[-3000:]}"
    return res


def this_environments_packages() -> list[str]:
    """The site-packages folders this interpreter imports from (a venv's own and, where it has
    them, the base's): the child venv sees these, whether pytest runs in a venv or not."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")
            and Path(p).is_dir()]


def make_venv(venv: Path) -> Path:
    """A venv whose own site-packages comes first, then this environment's packages, which
    stand in for the dependencies (no download). ``--system-site-packages`` would not do: made
    from a venv, it sees the base interpreter's packages, not the venv's. The folders are
    listed in a .pth file, so their own .pth files (an editable chokepoint) are not read."""
    ok(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                      text=True, timeout=300), "python -m venv")
    py = venv / "bin" / "python"
    own = ok(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path("
                             "'purelib'))"], capture_output=True, text=True, timeout=60),
             "the venv's python").stdout.strip()
    (Path(own) / "zz_parent_environment.pth").write_text(
        "\n".join(this_environments_packages()) + "\n", encoding="utf-8")
    return py


def test_wheel_runs_the_paper_scenario_from_anywhere(tmp_path):
    dist = tmp_path / "dist"
    # --no-isolation: the build backend of the test extra (hatchling), no download
    ok(subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                       str(dist), str(ROOT)], capture_output=True, text=True, timeout=900),
       "build")
    wheel = next(dist.glob("chokepoint-*.whl"))
    venv = tmp_path / "venv"
    py = make_venv(venv)
    ok(subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                       str(wheel)], capture_output=True, text=True, timeout=300),
       "pip install of the wheel")
    anywhere = tmp_path / "elsewhere"
    anywhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CHOKEPOINT_DATA", "VIRTUAL_ENV", "PYTHONHOME")}
    where = ok(subprocess.run([str(py), "-c", "import chokepoint, chokepoint.shipped as s; "
                               "print(chokepoint.__file__); print(s.data_dir())"], cwd=anywhere,
                              capture_output=True, text=True, env=env, timeout=300),
               "import chokepoint in the venv")
    package, data = where.stdout.split()
    assert package.startswith(str(venv)) and data.startswith(str(venv)), where.stdout
    # the commit it was built from, read from its metadata (no checkout to ask)
    from chokepoint.outputs.provenance import git_commit

    commit = subprocess.run([str(py), "-c", "from chokepoint.outputs.provenance import "
                             "installed; print(installed()[1])"], cwd=anywhere,
                            capture_output=True, text=True, env=env, timeout=300)
    assert commit.returncode == 0, commit.stderr
    assert git_commit() and commit.stdout.strip() == git_commit()
    run = ok(subprocess.run([str(venv / "bin" / "chokepoint"), "run", "paper_2020", "--quiet"],
                            cwd=anywhere, capture_output=True, text=True, env=env, timeout=600),
             "chokepoint run paper_2020")
    assert run.stdout == run.stderr == ""  # --quiet: errors only, and no solver banner
    vi = pd.read_csv(anywhere / "results" / "paper-2020" / "vulnerability.csv")
    china = vi[(vi.focal == "China") & (vi.chemistry == "LFP") & (vi.case == "proportional")]
    assert abs(100 * china["vi"].iloc[0] - 91.6) < 0.1
    bad = subprocess.run([str(venv / "bin" / "chokepoint"), "run", "paper_2020"], cwd=anywhere,
                         capture_output=True, text=True, timeout=300,
                         env={**env, "CHOKEPOINT_DATA": str(tmp_path / "nowhere")})
    assert bad.returncode == 1, bad.stderr
    assert "CHOKEPOINT_DATA=" in bad.stderr and "no such folder" in bad.stderr
