"""Every available solver and engine agrees with the default (highspy) on the paper grid, to
1e-6; the benchmark suites write their tables."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from chokepoint.bench.suites import SOLVERS, _grid
from chokepoint.bench.baseline import maxflow_vi
from chokepoint.cases import Case
from chokepoint.index import compute


@pytest.fixture(scope="module")
def paper_grid():
    nets, focal, pairs = _grid("paper")
    ref = compute(nets, focal, pairs, tuple(Case), "highspy", decompose=False)
    return nets, focal, pairs, ref.vulnerability.set_index(
        ["focal", "chemistry", "material", "case"])["vi"]


@pytest.mark.parametrize("solver", ["network", "appsi_highs", "highs", "glpk", "cbc"])
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
                        "--solvers", "highspy", "maxflow", "--repeat", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["solver"]) == ["highspy", "maxflow"]
    assert (table["status"] == "ok").all() and (table["max_abs_diff"] <= 1e-6).all()
    assert table.loc[0, "indices"] == 200 and table.loc[0, "solve_median_ms"] > 0


def test_bench_rejects_unknown_solver():
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--solvers", "glkp"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "did you mean 'glpk'" in r.stderr


def test_bench_scale_suite_writes_growth_table_and_plot(tmp_path):
    """Two tiny synthetic sizes: a row per size and solver, solvers agree, a plot is drawn."""
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--suite", "scale",
                        "--sizes", "6", "9", "--solvers", "highspy", "network",
                        "maxflow", "--repeat", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(zip(table["countries"], table["solver"])) == [
        (6, "highspy"), (6, "network"), (6, "maxflow"),
        (9, "highspy"), (9, "network"), (9, "maxflow")]
    assert (table["stages"] == 7).all() and (table["max_abs_diff"] <= 1e-6).all()
    assert table.groupby("countries")["network_arcs"].nunique().eq(1).all()
    assert table.loc[table["solver"] == "highspy", "indices"].eq(4).all()
    assert "highspy: time per index grows as arcs^" in r.stdout
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    assert (tmp_path / "scale.svg").read_text().startswith("<?xml")


def test_bench_chain_suite_times_whole_runs_from_a_flows_file(tmp_path):
    """The chain suite writes the 7-stage chain as a flows file and times the whole
    `chokepoint run` per solver in its own process; the engines agree."""
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", "--suite", "chain",
                        "--chain-sizes", "12", "--solvers", "highspy", "network", "--repeat",
                        "1", "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["solver"]) == ["highspy", "network"]
    assert (table["indices"] == 8).all() and (table["max_abs_diff"] <= 1e-6).all()
    assert (table["wall_s"] > 0).all() and (table["peak_rss_mib"] > 50).all()
    assert (table["network_arcs"] > 12 * 12).all()


def test_network_engine_agrees_on_the_ranking_grid():
    """Every country of the 2020 networks as a focal set (820 indices): the engines agree to
    1e-9 (a unit of tonnage too coarse for a small product once put them 2e-5 apart)."""
    nets, focal, pairs = _grid("ranking")
    got = {s: compute(nets, focal, pairs, tuple(Case), s, decompose=False).vulnerability
           .set_index(["focal", "chemistry", "material", "case"])["vi"]
           for s in ("highspy", "network")}
    assert (got["highspy"] - got["network"]).abs().max() <= 1e-9
