"""The package carries what it needs: a wheel, installed in a fresh virtual environment, runs
the shipped paper scenario by name from any folder (slow: builds the wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_runs_the_paper_scenario_from_anywhere(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist),
                            str(ROOT)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next(dist.glob("chokepoint-*.whl"))
    venv = tmp_path / "venv"
    # the environment's own packages stand in for the dependencies (no download); the wheel
    # is installed into the venv, which comes first on its path
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    anywhere = tmp_path / "elsewhere"
    anywhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHOKEPOINT_DATA")}
    where = subprocess.run([str(py), "-c", "import chokepoint, chokepoint.shipped as s; "
                            "print(chokepoint.__file__); print(s.data_dir())"], cwd=anywhere,
                           capture_output=True, text=True, env=env, timeout=300)
    package, data = where.stdout.split()
    assert package.startswith(str(venv)) and data.startswith(str(venv)), where.stdout
    # the commit it was built from, read from its metadata (no checkout to ask)
    from chokepoint.outputs.provenance import git_commit

    commit = subprocess.run([str(py), "-c", "from chokepoint.outputs.provenance import "
                             "installed; print(installed()[1])"], cwd=anywhere,
                            capture_output=True, text=True, env=env, timeout=300)
    assert commit.returncode == 0, commit.stderr
    assert git_commit() and commit.stdout.strip() == git_commit()
    run = subprocess.run([str(venv / "bin" / "chokepoint"), "run", "paper_2020", "--quiet"],
                         cwd=anywhere, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    vi = pd.read_csv(anywhere / "results" / "paper-2020" / "vulnerability.csv")
    china = vi[(vi.focal == "China") & (vi.chemistry == "LFP") & (vi.case == "proportional")]
    assert abs(100 * china["vi"].iloc[0] - 91.6) < 0.1
    bad = subprocess.run([str(venv / "bin" / "chokepoint"), "run", "paper_2020"], cwd=anywhere,
                         capture_output=True, text=True, timeout=300,
                         env={**env, "CHOKEPOINT_DATA": str(tmp_path / "nowhere")})
    assert bad.returncode == 1
    assert "CHOKEPOINT_DATA=" in bad.stderr and "no such folder" in bad.stderr
