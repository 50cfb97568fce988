"""A command imports what it uses: no plotting library without a figure, no Dask without
--dask, no data stack for --help. Checked on real processes by the modules loaded at exit
(time is measured by `chokepoint bench`, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

# Runs `chokepoint.cli` as `python -m chokepoint.cli` does, and at exit (after every other exit
# handler) writes the names of the modules that were imported.
HOOK = """
import atexit, json, runpy, sys
out, *argv = sys.argv[1:]
def dump():
    with open(out, "w") as f:
        json.dump(sorted(k for k, v in sys.modules.items() if v is not None), f)
atexit.register(dump)
sys.argv = ["chokepoint", *argv]
runpy.run_module("chokepoint.cli", run_name="__main__", alter_sys=True)
"""


def imported(tmp_path, *args) -> tuple[set[str], subprocess.CompletedProcess]:
    """The top-level packages a `chokepoint ARGS` process had imported when it exited."""
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", HOOK, str(out), *map(str, args)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert out.exists(), proc.stderr  # the command's quick exit still runs exit handlers
    names = json.loads(out.read_text())
    return {n.split(".")[0] for n in names}, proc


def test_help_imports_no_data_stack(tmp_path):
    tops, proc = imported(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: chokepoint" in proc.stdout
    assert "chokepoint" in tops  # the hook saw the real command
    assert not tops & {"pandas", "numpy", "xarray", "pyomo", "highspy", "scipy", "pydantic",
                       "matplotlib", "dask", "igraph"}


@pytest.mark.parametrize("solver", ["highspy", "network"])
def test_a_run_without_report_imports_no_plotting_and_no_dask(tmp_path, solver):
    tops, proc = imported(tmp_path, "run", "paper_2020", "--set", f"solver={solver}",
                          "--out", tmp_path / "out", "--quiet", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    vul = pd.read_csv(tmp_path / "out" / "vulnerability.csv")
    assert len(vul) == 10 * 5 * 4 + 10 * 4 * 1  # the grid and the NCM aggregate
    assert {"xarray", "pandas", "h5netcdf"} <= tops  # the run did write its results
    assert "highspy" in tops if solver == "highspy" else "igraph" in tops
    assert not tops & {"matplotlib", "dask", "distributed", "plotly", "jinja2"}


def test_igraph_imported_by_the_engine_leaves_matplotlib_importable(tmp_path):
    """The network engine hides matplotlib from igraph's first import only."""
    code = ("import sys; from chokepoint.lp.flow import _igraph; g = _igraph(); "
            "assert 'matplotlib' not in sys.modules; import matplotlib.pyplot; "
            "print(g.Graph(n=2, edges=[(0, 1)], directed=True).maxflow_value(0, 1, "
            "capacity=[2.5]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2.5"


def test_main_called_from_python_hides_nothing(tmp_path):
    """Only the command's own process marks Dask absent; a Python session calling main()
    keeps every library it has."""
    code = ("import sys; from chokepoint.cli import main; "
            "assert main(['validate', 'paper_2020']) == 0; "
            "assert sys.modules.get('dask', 'unimported') is not None")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
