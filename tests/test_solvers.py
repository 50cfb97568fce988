"""Every available solver agrees with HiGHS persistent on the paper grid, to 1e-6."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from chokepoint.bench import SOLVERS, _grid
from chokepoint.baseline import maxflow_vi
from chokepoint.cases import Case
from chokepoint.index import compute


@pytest.fixture(scope="module")
def paper_grid():
    nets, focal, pairs = _grid("paper")
    ref = compute(nets, focal, pairs, tuple(Case), "highspy", decompose=False)
    return nets, focal, pairs, ref.vulnerability.set_index(
        ["focal", "chemistry", "material", "case"])["vi"]


@pytest.mark.parametrize("solver", ["highs", "glpk", "cbc"])
def test_lp_solvers_agree_on_the_paper_grid(paper_grid, solver):
    if not SOLVERS[solver].available():
        pytest.skip(f"{solver} is not installed (Debian: glpk-utils, coinor-cbc)")
    nets, focal, pairs, ref = paper_grid
    got = compute(nets, focal, pairs, tuple(Case), SOLVERS[solver].pyomo, decompose=False)
    got = got.vulnerability.set_index(["focal", "chemistry", "material", "case"])["vi"]
    assert len(got) == len(ref) == 240
    assert (got - ref).abs().max() <= 1e-6


def test_maxflow_baseline_agrees_on_the_paper_grid(paper_grid):
    nets, focal, pairs, ref = paper_grid
    worst = 0.0
    for p in pairs:
        for fs in focal:
            nodes = fs.nodes(nets[p.material])
            for case in (Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B):
                v = maxflow_vi(nets[p.material], nodes, p.chemistry, case)
                worst = max(worst, abs(v - ref[fs.label, p.chemistry, p.material, case.value]))
    assert worst <= 1e-6


def test_bench_command_writes_csv(tmp_path):
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--suite", "paper",
                        "--solvers", "highs-matrix", "maxflow", "--repeat", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["solver"]) == ["highs-matrix", "maxflow"]
    assert (table["status"] == "ok").all() and (table["max_abs_diff"] <= 1e-6).all()
    assert table.loc[0, "indices"] == 200 and table.loc[0, "solve_median_ms"] > 0


def test_bench_rejects_unknown_solver():
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--solvers", "glkp"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "did you mean 'glpk'" in r.stderr


def test_bench_scale_suite_writes_growth_table_and_plot(tmp_path):
    """Two tiny synthetic sizes: a row per size and solver, solvers agree, a plot is drawn."""
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--suite", "scale",
                        "--sizes", "6", "9", "--solvers", "highs-matrix", "highs-persistent",
                        "maxflow", "--repeat", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(zip(table["countries"], table["solver"])) == [
        (6, "highs-matrix"), (6, "highs-persistent"), (6, "maxflow"),
        (9, "highs-matrix"), (9, "highs-persistent"), (9, "maxflow")]
    assert (table["stages"] == 7).all() and (table["max_abs_diff"] <= 1e-6).all()
    assert table.groupby("countries")["network_arcs"].nunique().eq(1).all()
    assert table.loc[table["solver"] == "highs-matrix", "indices"].eq(4).all()
    assert "highs-matrix: time per index grows as arcs^" in r.stdout
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    assert (tmp_path / "scale.svg").read_text().startswith("<?xml")
