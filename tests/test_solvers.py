"""Every available solver and engine agrees with the default (highspy) on the paper grid, to
1e-6; the benchmark suites write their tables."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chokepoint.bench.suites import SolverChoice, _grid
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
    why = SolverChoice.parse(solver).unavailable()
    if why:
        pytest.skip(f"{solver} cannot run here ({why}; Debian: glpk-utils, coinor-cbc)")
    nets, focal, pairs, ref = paper_grid
    got = compute(nets, focal, pairs, tuple(Case), solver, decompose=False)
    got = got.vulnerability.set_index(["focal", "chemistry", "material", "case"])["vi"]
    assert len(got) == len(ref) == 240
    assert (got - ref).abs().max() <= 1e-6


def _with_recycler(tonnes: float):
    """The tiny network plus a non-focal recycler of ``tonnes`` refined in China whose output
    leaves to the other sink: arcs of up to ``tonnes`` beside a product of 95 t."""
    from chokepoint.network import Network

    from conftest import TINY_ARCS

    arcs = [a if a[:2] != ("China_ref_poss", "China_ref") else (*a[:2], 100.0 + tonnes)
            for a in TINY_ARCS]
    arcs += [("Chile_recyc", "China_ref_poss", tonnes),
             ("China_ref", "Trade to countries with no cathode production or <br /> refined "
              "materials not accounted for in trade", tonnes)]
    return Network.from_arcs(arcs, material="lithium", origin=f"recycler {tonnes:g}")


@pytest.mark.parametrize("case", list(Case))
def test_mixed_magnitudes_give_the_same_indices_or_are_refused_naming_the_arcs(case):
    """A recycler far larger than the product (not a uniform change of units). Australia's
    bound-case indices do not depend on its size once it exceeds the chain's flows, and its
    proportional index is its share of China's refining, 60 / (100 + R), by hand. Within the
    range an LP solver resolves, every engine gives them; beyond it, the LP engines refuse
    naming the arcs, and the network engine still gives them."""
    from chokepoint.errors import SolverError
    from chokepoint.lp import VulnerabilityLP

    def vi(tonnes, solver):
        net = _with_recycler(tonnes)
        return VulnerabilityLP(net, solver).solve(["Australia_mine"], "LFP", case) / 95

    def expected(tonnes):
        return 60 / (100 + tonnes) if case is Case.PROPORTIONAL else \
            {Case.OPTIMISTIC: 0.0, Case.PESSIMISTIC_A: 60 / 95, Case.PESSIMISTIC_B: 85 / 95}[case]

    for tonnes in (1e3, 1e6, 1e9, 5e10):  # up to 5e8 times the product's 95 t
        for solver, within in (("highspy", 1e-7), ("appsi_highs", 1e-7), ("network", 1e-9)):
            assert vi(tonnes, solver) == pytest.approx(expected(tonnes), abs=within), \
                (tonnes, solver)
    for tonnes in (1e12, 1e19):
        for solver in ("highspy", "appsi_highs"):
            with pytest.raises(SolverError, match=re.escape(f"recycler {tonnes:g}: ") + r".*Chile_recyc -> "
                               r"China_ref_poss \(.* t\).* more than 1e\+09 times LFP's supply "
                               r"of 95 t.*use solver: network"):
                vi(tonnes, solver)
        assert vi(tonnes, "network") == pytest.approx(expected(tonnes), abs=1e-9)


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


def bench(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", "bench", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def test_any_solver_a_scenario_takes_benchmarks_and_agrees(tmp_path):
    """The open solver list: Pyomo's appsi, plain, *_direct (SCIP, from the test extra's
    pyscipopt) and the engines agree on every index of the paper grid to 1e-6; options ride
    along."""
    solvers = ["highspy", "appsi_highs", "network", "highspy:solver=ipm", "scip_direct"] + \
        [s for s in ("glpk", "cbc") if SOLVERS_AVAILABLE(s)]
    r = bench("--suite", "paper", "--solvers", *solvers, "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    # the solver's name and its options in columns of their own
    assert [s if pd.isna(o) else f"{s}:{o}" for s, o in
            zip(table["solver"], table["solver_options"])] == solvers
    assert (table["status"] == "ok").all(), table[["solver", "status"]]
    assert (table["max_abs_diff_vi"] <= 1e-6).all() and (table["indices"] == 200).all()
    if "scip_direct" in solvers:
        assert table.set_index("solver").loc["scip_direct", "solver_version"]


def SOLVERS_AVAILABLE(name: str) -> bool:
    return SolverChoice.parse(name).unavailable() is None


def test_bench_csv_is_tidy_and_cumulative(tmp_path):
    """No fake zeros (a solver that did not run has empty figures), every run's metadata, and
    a second run appended under its own id."""
    for _ in range(2):
        r = bench("--suite", "paper", "--solvers", "highspy", "maxflow", "gurobi_direct",
                  "--repeat", "1", "--out", tmp_path)
        assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert len(table) == 6 and table["run_id"].nunique() == 2
    runs = pd.read_csv(tmp_path / "runs.csv", dtype={"git_commit": str})
    assert list(runs["run_id"]) == list(dict.fromkeys(table["run_id"]))
    # an id pandas would read as a number loses leading zeros and stops matching strings
    assert all(isinstance(x, str) and x.startswith("r") for x in runs["run_id"])
    for col in ("date", "command", "chokepoint", "git_commit", "python", "os", "cpu_model",
                "cpu_count", "memory_gib", "load_1m", "repeats", "solver_versions"):
        assert runs[col].notna().all(), col
    assert runs["memory_gib"].gt(0).all() and runs["load_1m"].ge(0).all()
    versions = json.loads(runs["solver_versions"].iloc[0])
    assert versions["highspy"] and versions["maxflow"].startswith("networkx")
    missing = table[table["solver"] == "gurobi_direct"]
    assert missing["status"].str.startswith("not available").all()
    figures = ["indices", "solve_median_ms", "solve_p95_ms", "wall_s", "peak_rss_mib",
               "max_abs_diff_vi", "network_arcs"]
    assert missing[figures].isna().all().all()
    ran = table[table["solver"] != "gurobi_direct"]
    assert ran[["solve_median_ms", "wall_s", "peak_rss_mib"]].gt(0).all().all()
    assert set(ran.loc[ran["solver"] == "maxflow", "indices"]) == {150}
    assert ran["countries"].isna().all()  # no size for the paper grid: empty, not 0
    assert {c.split("_")[-1] for c in ["solve_median_ms", "wall_s", "peak_rss_mib"]} <= \
        {"ms", "s", "mib"}


def test_bench_rejects_unknown_solver():
    r = bench("--solvers", "glkp")
    assert r.returncode == 1 and "did you mean 'glpk'" in r.stderr


def test_bench_times_a_users_extension_as_a_formulation(tmp_path):
    """--families: every suite runs with the scenario's user families off and on."""
    import shutil

    shutil.copy(Path(__file__).parent / "fixtures" / "capped_rules.py", tmp_path)
    (tmp_path / "ext.yaml").write_text("name: ext\nnetwork: {year: 2020}\nfocal: {China: "
                                       "[China]}\nextensions: [capped_rules.py]\n"
                                       "parameters: {capped_arcs.share: 0.25}\n")
    r = bench("--suite", "paper", "--solvers", "highspy", "network", "--families",
              tmp_path / "ext.yaml", "--repeat", "2", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(zip(table["formulation"], table["solver"])) == [
        ("core", "highspy"), ("core", "network"),
        ("core+capped_arcs", "highspy"), ("core+capped_arcs", "network")]
    assert (table["max_abs_diff_vi"] <= 1e-6).all()
    # the terminal table names each formulation whole, in its own column
    shown = [line.split()[1:3] for line in r.stdout.splitlines() if line.startswith("paper ")]
    assert shown == [["highspy", "core"], ["network", "core"],
                     ["highspy", "core+capped_arcs"], ["network", "core+capped_arcs"]]
    # the raw measurements: one row per index x solver x formulation x repeat
    ms = pd.read_csv(tmp_path / "measurements.csv")
    assert len(ms) == 200 * 2 * 2 * 2
    assert ms.groupby(["solver", "formulation", "repeat"]).size().eq(200).all()
    assert ms["instance"].nunique() == 200 and set(ms["repeat"]) == {1, 2}
    # bench.csv's figures are the measurements' (indices solved without an LP left out)
    solved = ms[ms["status"] == "ok"]
    for row in table.itertuples():
        mine = solved[(solved["solver"] == row.solver)
                      & (solved["formulation"] == row.formulation)]["seconds"] * 1000
        assert row.solve_median_ms == pytest.approx(mine.median(), rel=1e-12)
        assert row.solve_p95_ms == pytest.approx(
            sorted(mine)[min(len(mine) - 1, int(0.95 * len(mine)))], rel=1e-12)
    assert ms.loc[ms["status"] != "ok", "status"].str.startswith("not solved:").all()
    # the engine that solved: network hands a user family's case to highspy, and says so
    engines = ms[ms["status"] == "ok"].groupby(["solver", "formulation"])["engine"].agg(set)
    assert engines["network", "core"] == {"network"}
    assert "highspy" in engines["network", "core+capped_arcs"]
    assert engines["highspy", "core+capped_arcs"] == {"highspy"}
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert json.loads(runs["family_parameters"].iloc[0]) == {"capped_arcs.share": 0.25}
    assert runs["families"].iloc[0].endswith("ext.yaml")


def test_bench_scale_suite_writes_growth_with_its_spread_and_plot(tmp_path):
    """Three tiny synthetic sizes: a row per size and solver, solvers agree, the growth
    exponent with its standard error, a plot."""
    r = bench("--suite", "scale", "--sizes", "6", "9", "12", "--solvers", "highspy", "network",
              "maxflow", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(zip(table["countries"], table["solver"])) == [
        (n, s) for n in (6, 9, 12) for s in ("highspy", "network", "maxflow")]
    assert (table["stages"] == 7).all() and (table["max_abs_diff_vi"] <= 1e-6).all()
    assert table.groupby("countries")["network_arcs"].nunique().eq(1).all()
    assert table.loc[table["solver"] == "highspy", "indices"].eq(4).all()
    ms = pd.read_csv(tmp_path / "measurements.csv")  # sizes x (cases of each solver)
    assert len(ms) == 3 * (4 + 4 + 3) and (ms["status"] == "ok").all()
    assert ms.groupby(["countries", "solver"]).size().to_dict() == {
        (n, s): 3 if s == "maxflow" else 4 for n in (6, 9, 12)
        for s in ("highspy", "network", "maxflow")}
    assert re.search(r"highspy: time per index grows as arcs\^-?[\d.]+ \+- [\d.e-]+ \(3 sizes",
                     r.stdout)
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    assert (tmp_path / "scale.svg").read_text().startswith("<?xml")
    two = bench("--suite", "scale", "--sizes", "6", "9", "--solvers", "highspy", "--repeat",
                "1", "--out", tmp_path / "two")
    assert "highspy: no exponent fitted (2 size(s); three or more are needed)" in two.stdout


def test_bench_chain_suite_times_whole_runs_from_a_flows_file(tmp_path):
    """The chain suite writes the 7-stage chain as a flows file and times the whole
    `chokepoint run` per solver in its own process; the engines agree."""
    r = bench("--suite", "chain", "--chain-sizes", "12", "16", "--solvers", "highspy",
              "network", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["solver"]) == ["highspy", "network"] * 2
    assert (table["indices"] == 8).all() and (table["max_abs_diff_vi"] <= 1e-6).all()
    assert (table["wall_s"] > 0).all() and (table["peak_rss_mib"] > 50).all()
    assert (table["network_arcs"] > 12 * 12).all()
    # each solver's progress: a line as it starts, one with its time when it is done
    arcs = table["network_arcs"].iloc[0]
    for solver in ("highspy", "network"):
        assert f"chain [core]: {arcs} arcs: {solver} (whole chokepoint run) ..." in r.stderr
        assert re.search(rf"^chain \[core\]: {arcs} arcs: {solver}: \d+\.\d s$", r.stderr,
                         re.M), r.stderr
    # where each whole run's time went: every phase measured, together the run's wall time
    spent = table[["start_s", "read_s", "build_s", "solve_s", "write_s", "exit_s"]]
    assert (spent[["start_s", "read_s", "build_s", "solve_s", "write_s"]] > 0).all().all()
    assert (spent["exit_s"] > -0.05).all()  # the rest, from two clocks
    assert np.allclose(spent.sum(axis=1), table["wall_s"], atol=1e-6)
    assert "where the time goes" in r.stdout
    assert re.search(r"network: 12 -> 16 economies: arcs x[\d.]+, whole run x[\d.]+", r.stdout)
    ms = pd.read_csv(tmp_path / "measurements.csv")  # a whole run per solver and repeat
    assert list(ms["solver"]) == ["highspy", "network"] * 2
    assert list(ms["instance"]) == ["chain-12"] * 2 + ["chain-16"] * 2
    assert list(ms["seconds"]) == list(table["wall_s"])  # best of one repeat


def test_bench_of_a_scenario_honours_out(tmp_path):
    r = bench("paper_2020", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "benchmark: paper-2020: 200 indices" in r.stdout
    # the paper grid is the work the authors timed: the one place their time is set beside ours
    assert "the same 200 indices took the authors' code about 15 s" in r.stdout
    table = pd.read_csv(tmp_path / "bench.csv")
    assert list(table["suite"]) == ["scenario paper-2020"] and table["wall_s"].gt(0).all()


def test_progress_is_shown_while_a_suite_runs(tmp_path):
    r = bench("--suite", "paper", "--solvers", "highspy", "--repeat", "1", "--out", tmp_path)
    assert re.search(r"paper \[core\]: highspy \.\.\.\npaper \[core\]: highspy: [\d.]+ s",
                     r.stderr), r.stderr


@pytest.mark.parametrize("focal, pair, case", [
    ("China", "LFP-lithium", "pessimistic_a"), ("Australia", "NCM-lithium", "proportional"),
    ("DR Congo", "NCM-cobalt", "pessimistic_b"), ("Japan", "NCM-nickel", "optimistic")])
def test_an_exported_mps_solved_by_highs_alone_gives_the_index(tmp_path, focal, pair, case):
    import highspy

    from chokepoint.api import run
    from chokepoint.chemistry import parse_pair

    path = tmp_path / "index.mps"
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "export-lp", "paper_2020",
                        "--focal", focal, "--pair", pair, "--case", case, "--out", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sign, supply = re.search(r"index = (-?)objective / ([\d.e+]+) t", r.stderr).groups()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    h.run()
    assert h.modelStatusToString(h.getModelStatus()) == "Optimal"
    p = parse_pair(pair)
    want = float(run("paper_2020", write_files=False).dataset["vi"].sel(
        focal=focal, chemistry=p.chemistry, material=p.material, case=case))
    got = (-1 if sign else 1) * h.getInfo().objective_function_value / float(supply)
    assert got == pytest.approx(want, abs=1e-9)


def _solve_with_program(program: str, path: Path, tmp_path: Path) -> float:
    """The optimal objective of an MPS file by glpsol or cbc, run as the user would."""
    import shutil

    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed here (Debian: glpk-utils, coinor-cbc)")
    sol = tmp_path / f"{program}.txt"
    args = {"glpsol": ["glpsol", "--freemps", str(path), "-w", str(sol)],
            "cbc": ["cbc", str(path), "solve", "solu", str(sol)]}[program]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    text = sol.read_text()
    if program == "glpsol":  # s bas ROWS COLS PRIMAL DUAL OBJECTIVE: f f is optimal
        status = next(x for x in text.splitlines() if x.startswith("s bas")).split()
        assert status[4:6] == ["f", "f"], status
        return float(status[6])
    first = text.splitlines()[0]
    assert first.startswith("Optimal - objective value"), first
    return float(first.split()[-1])


@pytest.mark.parametrize("program", ["glpsol", "cbc"])
def test_glpsol_and_cbc_solve_an_exported_mps_to_the_papers_value(tmp_path, program):
    """The MPS that export-lp writes is read by glpsol (no OBJSENSE section, a one-word
    NAME) and cbc, and their optimum gives the paper's 93.1912% (China, LFP-Li, pessimistic
    A); the file's comment lines say how."""
    path = tmp_path / "china.mps"
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "export-lp", "paper_2020",
                        "--focal", "China", "--pair", "LFP-lithium", "--case", "pessimistic_a",
                        "--out", str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    text = path.read_text()
    assert "OBJSENSE" not in text and "'" not in text.split("NAME", 1)[1].splitlines()[0]
    head = [x for x in text.splitlines() if x.startswith("*")]
    assert any("objective: minus the touched tonnes" in x for x in head), head
    rule = next(x for x in head if "index = -objective / supply" in x)
    supply = float(re.search(r"product supply: ([\d.e+]+) t", rule).group(1))
    objective = _solve_with_program(program, path, tmp_path)
    assert 100 * -objective / supply == pytest.approx(93.1912, abs=5e-5)


@pytest.mark.parametrize("args, message", [
    (["--solvers", "highspy:solver=[1"], "option solver: '[1' is not a YAML value"),
    (["--solvers", "highspy:solver=ipm,solver=simplex"], "option 'solver' is given twice"),
    (["--solvers", "maxflow:x=1"], "the maxflow baseline takes no options"),
    (["--solvers", "highspy:solver=nonsense"], "highspy rejects these options"),
    (["--suite", "scale", "--sizes", "0"], "argument --sizes: 0 is below 2"),
    (["--suite", "chain", "--chain-sizes", "1"], "argument --chain-sizes: 1 is below 2"),
    (["--repeat", "0"], "argument --repeat: 0 is below 1"),
    (["paper_2020", "--suite", "paper"], "--suite is for the suites; a scenario is timed"),
])
def test_bench_refuses_bad_arguments_before_measuring(tmp_path, args, message):
    r = bench(*args, "--out", tmp_path)
    assert r.returncode in (1, 2) and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bench.csv").exists()


def test_bench_csv_that_is_not_ours_is_refused_before_measuring(tmp_path):
    (tmp_path / "bench.csv").write_bytes(b"\x00\x01\xff\xfegarbage\n")
    r = bench("--suite", "paper", "--solvers", "network", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 1 and "is not a bench.csv (not UTF-8 text)" in r.stderr
    assert (tmp_path / "bench.csv").read_bytes() == b"\x00\x01\xff\xfegarbage\n"


def test_bench_csv_cut_mid_line_gets_its_rows_on_lines_of_their_own(tmp_path):
    r = bench("--suite", "paper", "--solvers", "network", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "bench.csv"
    path.write_bytes(path.read_bytes()[:-1])  # no final newline, as an editor may leave it
    r = bench("--suite", "paper", "--solvers", "network", "--repeat", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(path)
    assert len(table) == 2 and table["run_id"].nunique() == 2


def test_export_lp_refuses_a_name_that_contradicts_its_format(tmp_path):
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "export-lp", "paper_2020",
                        "--focal", "China", "--pair", "LFP-lithium", "--case", "optimistic",
                        "--format", "lp", "--out", str(tmp_path / "x.mps")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "the name says mps, --format says lp" in r.stderr
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "export-lp", "paper_2020",
                        "--focal", "China", "--pair", "LFP-lithium", "--case", "optimistic",
                        "--out", str(tmp_path / "x.lp")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "x.lp").read_text()
    assert text.startswith("\\ chokepoint: ") and "\\* Source Pyomo model" in text
